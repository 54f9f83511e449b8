//  core/herd_file.h: what the herd's files on disk (journal, log) need
//  beyond CZMQ's zsys/zfile: a file's folder made on demand, and a folder
//  made durable after a file in it was created or renamed.

#ifndef HERD_FILE_H_INCLUDED
#define HERD_FILE_H_INCLUDED

//  Creates the folder that path's file lives in, with its parents
//  (zsys_dir_create). 0, or -1 with errno set.
int
    herd_file_create_folder (const char *path);

//  fsyncs the folder holding path, so a file created or renamed there
//  survives a power cut. 0, or -1 with errno set.
int
    herd_file_sync_folder (const char *path);

void
    herd_file_test (bool verbose);

#endif
