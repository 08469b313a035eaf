/* Finding the originals of the interposed functions. */
#include "wrappers.h"
#include "internal.h"
#include "../preload/preload.h"

#include <dlfcn.h>

void *lp_resolve(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);
	if (!p)
		lp_log(LP_LOG_WARN, "cannot find the original %s", name);
	return p;
}

void lp_wrappers_init(void)
{
	lp_signal_wrappers_init();
	lp_thread_wrappers_init();
	lp_dl_wrappers_init();
	lp_exec_wrappers_init();
	lp_malloc_wrappers_init();
	lp_mutex_wrappers_init();
	lp_socket_wrappers_init();
	lp_fd_wrappers_init();
}
