/*
 * The dynamic loader. dlclose is wrapped to mark the thread as inside the
 * loader (its samples are dropped and counted) while libraries are finalized
 * and unmapped. dlopen, dlmopen and dl_iterate_phdr are deliberately not
 * wrapped: glibc takes their caller's address to choose the library search
 * path (DT_RUNPATH) and the namespace, so a wrapper would change which library
 * a program loads. Samples whose pc is inside ld.so itself (where dlopen does
 * its work) are dropped by the handler instead, and the unwinder never takes a
 * loader lock (_dl_find_object), so no sample can deadlock on one.
 */
#include "wrappers.h"
#include "internal.h"
#include "../preload/preload.h"
#include "../unwinder/unwinder.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int (*real_dlclose)(void *);

LP_EXPORT int dlclose(void *handle)
{
	if (!real_dlclose)
		lp_dl_wrappers_init();
	lp_self.in_loader++;
	int rc = real_dlclose(handle);
	lp_unwind_forget();         /* its code may be gone, other code may come there */
	lp_self.in_loader--;
	return rc;
}

void lp_dl_wrappers_init(void)
{
	real_dlclose = (int (*)(void *))lp_resolve("dlclose");
}
