//  core/herd_file.h: what the herd's files on disk (journal, log) need
//  beyond CZMQ's zsys/zfile: a file's folder made on demand, a folder
//  made durable after a file in it was created or renamed, and a write
//  that writes everything, and a lock for one process per state folder.

#ifndef HERD_FILE_H_INCLUDED
#define HERD_FILE_H_INCLUDED

//  Creates the folder that path's file lives in, with its parents
//  (zsys_dir_create). 0, or -1 with errno set.
int
    herd_file_create_folder (const char *path);

//  Opens the folder holding path (read-only, for fsync). An fd, or -1
//  with errno set.
int
    herd_file_open_folder (const char *path);

//  fsyncs the folder holding path, so a file created or renamed there
//  survives a power cut. 0, or -1 with errno set.
int
    herd_file_sync_folder (const char *path);

//  Writes all of data to fd, across short writes and EINTR. 0, or -1 with
//  errno set (ENOSPC if the disk took nothing). Only write(2): safe in a
//  forked child.
int
    herd_file_write_all (int fd, const void *data, size_t size);

//  Takes an exclusive lock (fcntl, released when the process ends however
//  it ends) on path, made if missing with its folder, and writes our pid
//  in it: one process per server's state. The open fd, to keep for the
//  process's life; or -1 with errno set, and *holder the pid of the
//  process that holds the lock (0 if none was found).
int
    herd_file_lock (const char *path, pid_t *holder);

void
    herd_file_test (bool verbose);

#endif
