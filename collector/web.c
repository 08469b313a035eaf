/*
 * The page: GET / and the files it loads, compiled into the collector so that
 * it stays one program. The files are collector/web/ (index.html, app.js,
 * style.css) and d3-flame-graph with the d3 modules it needs, fetched by the
 * Makefile with npm into build/web/; collector/web/embed.sh turns them into
 * build/gen/web_assets.c (lp_web_files). The page reads the JSON API
 * (query.c); it holds no data itself, so http.c serves these files without
 * the token (docs/COLLECTOR.md).
 */
#include "collector.h"

#include <string.h>

const struct lp_web_file *lp_web_find(const char *path)
{
	for (size_t i = 0; i < lp_web_n_files; i++) {
		if (strcmp(lp_web_files[i].path, path) == 0)
			return &lp_web_files[i];
	}
	return NULL;
}

int lp_web_serve(const struct lp_ctx *c, const struct lp_request *req, struct lp_reply *rep)
{
	const struct lp_web_file *f = lp_web_find(req->path);

	(void)c;
	if (!f)
		return lp_reply_text(rep, 404, "no such path: %.100s", req->path);
	rep->status = 200;
	rep->content_type = f->content_type;
	rep->body.len = 0;
	return lp_buf_append(&rep->body, f->data, f->len);
}
