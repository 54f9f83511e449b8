//  core/herd_file.c: a file's folder, created and made durable.

#include "core/herd_core_layer.h"
#include <sys/wait.h>
#include <libgen.h>

//  The folder part of path, "." if it has none. Caller frees.
static char *
s_folder (const char *path)
{
    char *copy = strdup (path);
    char *folder = strdup (dirname (copy));
    freen (copy);
    return folder;
}

int
herd_file_create_folder (const char *path)
{
    assert (path);
    char *folder = s_folder (path);
    int rc = zsys_dir_create ("%s", folder);
    freen (folder);
    return rc;
}

int
herd_file_open_folder (const char *path)
{
    assert (path);
    char *folder = s_folder (path);
    int fd = open (folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int saved = errno;
    freen (folder);
    errno = saved;
    return fd;
}

int
herd_file_sync_folder (const char *path)
{
    int fd = herd_file_open_folder (path);
    if (fd == -1)
        return -1;
    int rc = fsync (fd);
    int saved = errno;
    close (fd);
    errno = saved;
    return rc;
}

int
herd_file_write_all (int fd, const void *data, size_t size)
{
    const char *next = (const char *) data;
    while (size) {
        ssize_t written = write (fd, next, size);
        if (written == -1 && errno == EINTR)
            continue;
        if (written == 0)
            errno = ENOSPC;
        if (written <= 0)
            return -1;
        next += written;
        size -= written;
    }
    return 0;
}

int
herd_file_lock (const char *path, pid_t *holder)
{
    assert (path && holder);
    *holder = 0;
    herd_file_create_folder (path);    //  If it fails, open says why
    int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd == -1)
        return -1;
    struct flock lock = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    if (fcntl (fd, F_SETLK, &lock) == -1) {
        int error = errno;
        struct flock held = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        if (fcntl (fd, F_GETLK, &held) == 0 && held.l_type != F_UNLCK)
            *holder = held.l_pid;
        close (fd);
        errno = error == EACCES? EAGAIN: error;
        return -1;
    }
    char pid [24];
    int size = snprintf (pid, sizeof pid, "%d\n", (int) getpid ());
    if (ftruncate (fd, 0) == -1 || pwrite (fd, pid, (size_t) size, 0) != size) {
        int error = errno;
        close (fd);
        errno = error;
        return -1;
    }
    return fd;
}

void
herd_file_test (bool verbose)
{
    printf (" * herd_file: ");
    if (verbose)
        printf ("\n");
    char *base = zsys_sprintf ("/tmp/herd-file-test-%d", getpid ());
    char *path = zsys_sprintf ("%s/a/b/file", base);
    assert (herd_file_create_folder (path) == 0);
    assert (zsys_file_exists (base));
    FILE *file = fopen (path, "w");
    assert (file);
    fclose (file);
    assert (herd_file_sync_folder (path) == 0);
    assert (herd_file_create_folder ("plain-name") == 0);      //  "." exists
    assert (herd_file_sync_folder ("/no/such/folder/file") == -1);
    //  Everything written, in one call
    int fd = open (path, O_WRONLY | O_APPEND);
    assert (fd != -1 && herd_file_write_all (fd, "abc\n", 4) == 0);
    close (fd);
    assert (zsys_file_size (path) == 4);
    unlink (path);
    //  The lock: ours, then refused to a child, who is told our pid
    char *lock_path = zsys_sprintf ("%s/a/b/T.lock", base);
    pid_t holder = -1;
    int lock = herd_file_lock (lock_path, &holder);
    assert (lock != -1 && holder == 0);
    pid_t child = fork ();
    if (child == 0) {
        pid_t seen = 0;
        int again = herd_file_lock (lock_path, &seen);
        _exit (again == -1 && errno == EAGAIN && seen == getppid ()? 0: 1);
    }
    int status;
    assert (waitpid (child, &status, 0) == child && WIFEXITED (status) && WEXITSTATUS (status) == 0);
    close (lock);
    unlink (lock_path);
    freen (lock_path);
    char *folder = zsys_sprintf ("%s/a/b", base);
    zsys_dir_delete ("%s", folder);
    freen (folder);
    folder = zsys_sprintf ("%s/a", base);
    zsys_dir_delete ("%s", folder);
    freen (folder);
    zsys_dir_delete ("%s", base);
    assert (!zsys_file_exists (base));
    freen (path);
    freen (base);
    printf ("OK\n");
}
