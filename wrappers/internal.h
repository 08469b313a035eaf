/* wrappers/ private: each file's resolver, and the dlsym(RTLD_NEXT) helper. */
#ifndef LP_WRAPPERS_INTERNAL_H
#define LP_WRAPPERS_INTERNAL_H

/* The next definition of name after libprof; logs and returns NULL if none. */
void *lp_resolve(const char *name);

void lp_signal_wrappers_init(void);
void lp_thread_wrappers_init(void);
void lp_dl_wrappers_init(void);
void lp_exec_wrappers_init(void);
void lp_malloc_wrappers_init(void);
void lp_mutex_wrappers_init(void);
void lp_socket_wrappers_init(void);
void lp_fd_wrappers_init(void);

#endif
