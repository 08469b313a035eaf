/*
 * The collector's storage: one SQLite file in WAL mode. Each ingested profile
 * is one row (its gzip pprof and what queries filter on); the trace index has
 * one row per (trace id, profile) with the trace's total of the profile's
 * default sample type, written in the same transaction, so trace queries read
 * only the profiles that hold the trace. Every change is one transaction: a
 * crash or kill -9 leaves the previous or the next state, never a broken file.
 *
 * Two connections: one writes (ingest, retention), one reads (queries), each
 * guarded by its own mutex (leaf locks, held for one statement sequence), so a
 * long merge-feeding read never blocks ingest (WAL readers see a snapshot).
 * Schema and retention rules: docs/COLLECTOR.md.
 */
#include "collector.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

struct lp_store {
	sqlite3 *wr, *rd;
	pthread_mutex_t wr_mu;       /* guards wr; leaf lock */
	pthread_mutex_t rd_mu;       /* guards rd; leaf lock */
};

static const char schema[] =
	"PRAGMA auto_vacuum=INCREMENTAL;"   /* must precede the first table */
	"PRAGMA journal_mode=WAL;"
	"CREATE TABLE IF NOT EXISTS profiles("
	" id INTEGER PRIMARY KEY,"
	" service TEXT NOT NULL, type TEXT NOT NULL, labels TEXT NOT NULL,"
	" value_type TEXT NOT NULL, value_unit TEXT NOT NULL,"
	" time_from INTEGER NOT NULL, time_until INTEGER NOT NULL,"   /* unix ns */
	" received INTEGER NOT NULL, size INTEGER NOT NULL,"
	" data BLOB NOT NULL);"                                      /* gzip pprof */
	"CREATE INDEX IF NOT EXISTS profiles_by_service ON profiles(service, type, time_until);"
	"CREATE INDEX IF NOT EXISTS profiles_by_time ON profiles(time_until);"
	"CREATE TABLE IF NOT EXISTS trace_index("
	" trace_id TEXT NOT NULL, profile_id INTEGER NOT NULL, total INTEGER NOT NULL,"
	" PRIMARY KEY(trace_id, profile_id)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS trace_index_by_profile ON trace_index(profile_id);"
	"PRAGMA user_version=1;";

static int sql_err(sqlite3 *db, int rc, const char *what)
{
	lp_log(LP_LOG_WARN, "store: %s: %s", what, sqlite3_errmsg(db));
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_TOOBIG:
		return -EFBIG;
	default:
		return -EIO;
	}
}

/* mkdir -p of path's directory, each created level 0700. */
static int make_parents(const char *path)
{
	char dir[4096];
	char *slash;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = 0;
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(dir, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

static int open_conn(const char *path, sqlite3 **db)
{
	int rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);

	if (rc != SQLITE_OK) {
		lp_log(LP_LOG_WARN, "store: cannot open %s: %s", path,
		       *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
		return -EIO;
	}
	sqlite3_busy_timeout(*db, 5000);
	/* NORMAL in WAL mode: a crash loses no committed transaction of a
	 * surviving OS and never corrupts; a power loss may drop the last few */
	rc = sqlite3_exec(*db, "PRAGMA synchronous=NORMAL;", NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : sql_err(*db, rc, "pragma");
}

int lp_store_open(struct lp_store **out, const char *path)
{
	struct lp_store *st;
	int fd, rc, err;

	*out = NULL;
	err = make_parents(path);
	if (err) {
		lp_log(LP_LOG_WARN, "store: cannot create the directory of %s: %s", path,
		       strerror(-err));
		return err;
	}
	/* created here, not by SQLite, to be 0600 whatever the umask; -wal and
	 * -shm files take the database file's permissions */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		lp_log(LP_LOG_WARN, "store: cannot open %s: %s", path, strerror(errno));
		return err;
	}
	close(fd);
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	pthread_mutex_init(&st->wr_mu, NULL);
	pthread_mutex_init(&st->rd_mu, NULL);
	err = open_conn(path, &st->wr);
	if (!err) {
		rc = sqlite3_exec(st->wr, schema, NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			err = sql_err(st->wr, rc, "creating the schema");
	}
	if (!err)
		err = open_conn(path, &st->rd);
	if (err) {
		lp_store_close(st);
		return err;
	}
	*out = st;
	return 0;
}

void lp_store_close(struct lp_store *st)
{
	if (!st)
		return;
	sqlite3_close(st->rd);
	sqlite3_close(st->wr);
	pthread_mutex_destroy(&st->wr_mu);
	pthread_mutex_destroy(&st->rd_mu);
	free(st);
}

/* ---- ingest ------------------------------------------------------------------------- */

static int exec(sqlite3 *db, const char *sql)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sql_err(db, rc, sql);
}

static int put_locked(struct lp_store *st, const struct lp_profile_row *r)
{
	static const char ins[] =
		"INSERT INTO profiles(service, type, labels, value_type, value_unit,"
		" time_from, time_until, received, size, data) VALUES(?,?,?,?,?,?,?,?,?,?)";
	sqlite3_stmt *s = NULL, *t = NULL;
	sqlite3_int64 id;
	int rc;

	rc = sqlite3_prepare_v2(st->wr, ins, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return sql_err(st->wr, rc, "insert");
	sqlite3_bind_text(s, 1, r->service, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, r->type, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, r->labels_json, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, r->value_type, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, r->value_unit, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, r->from_ns);
	sqlite3_bind_int64(s, 7, r->until_ns);
	sqlite3_bind_int64(s, 8, lp_now_ns());
	sqlite3_bind_int64(s, 9, (sqlite3_int64)r->gz_len);
	sqlite3_bind_blob64(s, 10, r->gz, r->gz_len, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return sql_err(st->wr, rc, "insert");
	id = sqlite3_last_insert_rowid(st->wr);
	if (r->n_traces == 0)
		return 0;
	rc = sqlite3_prepare_v2(st->wr, "INSERT OR REPLACE INTO trace_index VALUES(?,?,?)",
				-1, &t, NULL);
	if (rc != SQLITE_OK)
		return sql_err(st->wr, rc, "insert trace");
	for (size_t i = 0; i < r->n_traces && rc != SQLITE_ERROR; i++) {
		sqlite3_bind_text(t, 1, r->traces[i].trace_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(t, 2, id);
		sqlite3_bind_int64(t, 3, r->traces[i].total);
		rc = sqlite3_step(t);
		if (rc != SQLITE_DONE)
			break;
		sqlite3_reset(t);
	}
	sqlite3_finalize(t);
	return rc == SQLITE_DONE ? 0 : sql_err(st->wr, rc, "insert trace");
}

int lp_store_put(struct lp_store *st, const struct lp_profile_row *r)
{
	int err;

	pthread_mutex_lock(&st->wr_mu);
	err = exec(st->wr, "BEGIN IMMEDIATE");
	if (!err) {
		err = put_locked(st, r);
		err = err ? err : exec(st->wr, "COMMIT");
		if (err)
			(void)!exec(st->wr, "ROLLBACK");
	}
	pthread_mutex_unlock(&st->wr_mu);
	return err;
}

/* ---- queries ------------------------------------------------------------------------- */

/* Appends the WHERE conditions of q on profiles p (bound by name). */
static void where(char *sql, size_t n, const struct lp_query *q)
{
	size_t len = strlen(sql);

	snprintf(sql + len, n - len, " p.time_until >= :from AND p.time_from <= :until%s%s%s",
		 q->service ? " AND p.service = :service" : "",
		 q->type ? " AND p.type = :type" : "",
		 q->trace_id ? " AND t.trace_id = :trace" : "");
}

static void bind_query(sqlite3_stmt *s, const struct lp_query *q)
{
	sqlite3_bind_int64(s, sqlite3_bind_parameter_index(s, ":from"), q->from_ns);
	sqlite3_bind_int64(s, sqlite3_bind_parameter_index(s, ":until"), q->until_ns);
	sqlite3_bind_int64(s, sqlite3_bind_parameter_index(s, ":limit"),
			   q->limit ? (sqlite3_int64)q->limit : -1);
	if (q->service)
		sqlite3_bind_text(s, sqlite3_bind_parameter_index(s, ":service"), q->service, -1,
				  SQLITE_STATIC);
	if (q->type)
		sqlite3_bind_text(s, sqlite3_bind_parameter_index(s, ":type"), q->type, -1,
				  SQLITE_STATIC);
	if (q->trace_id)
		sqlite3_bind_text(s, sqlite3_bind_parameter_index(s, ":trace"), q->trace_id, -1,
				  SQLITE_STATIC);
}

/* Runs sql on the read connection, handing each row to row_fn. */
static int read_rows(struct lp_store *st, const char *sql, const struct lp_query *q,
		     int (*row_fn)(sqlite3_stmt *s, void *ctx), void *ctx)
{
	sqlite3_stmt *s = NULL;
	int rc, err = 0;

	pthread_mutex_lock(&st->rd_mu);
	rc = sqlite3_prepare_v2(st->rd, sql, -1, &s, NULL);
	if (rc != SQLITE_OK) {
		err = sql_err(st->rd, rc, "query");
		goto out;
	}
	if (q)
		bind_query(s, q);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && !err)
		err = row_fn(s, ctx);
	if (!err && rc != SQLITE_DONE && rc != SQLITE_ROW)
		err = sql_err(st->rd, rc, "query");
	sqlite3_finalize(s);
out:
	pthread_mutex_unlock(&st->rd_mu);
	return err;
}

struct blob_ctx {
	lp_blob_fn fn;
	void *ctx;
};

static int blob_row(sqlite3_stmt *s, void *ctx)
{
	struct blob_ctx *b = ctx;

	return b->fn(b->ctx, sqlite3_column_blob(s, 0), (size_t)sqlite3_column_bytes(s, 0));
}

int lp_store_profiles(struct lp_store *st, const struct lp_query *q, lp_blob_fn fn, void *ctx)
{
	struct blob_ctx b = { fn, ctx };
	char sql[512];

	/* with a trace id, the trace index picks the profiles: CROSS JOIN keeps it
	 * the outer loop (else SQLite may walk every profile of the service in the
	 * time range and probe the index for each) */
	snprintf(sql, sizeof(sql), q->trace_id
		 ? "SELECT p.data FROM trace_index t CROSS JOIN profiles p ON p.id = t.profile_id WHERE"
		 : "SELECT p.data FROM profiles p WHERE");
	where(sql, sizeof(sql), q);
	strcat(sql, " ORDER BY p.time_until DESC LIMIT :limit");
	return read_rows(st, sql, q, blob_row, &b);
}

struct service_ctx {
	lp_service_fn fn;
	void *ctx;
};

static int service_row(sqlite3_stmt *s, void *ctx)
{
	struct service_ctx *c = ctx;
	struct lp_service_row r = {
		.service = (const char *)sqlite3_column_text(s, 0),
		.type = (const char *)sqlite3_column_text(s, 1),
		.n_profiles = sqlite3_column_int64(s, 2),
		.from_ns = sqlite3_column_int64(s, 3),
		.until_ns = sqlite3_column_int64(s, 4),
		.bytes = sqlite3_column_int64(s, 5),
	};

	if (!r.service || !r.type)
		return -ENOMEM;
	return c->fn(c->ctx, &r);
}

int lp_store_services(struct lp_store *st, lp_service_fn fn, void *ctx)
{
	struct service_ctx c = { fn, ctx };

	return read_rows(st, "SELECT service, type, COUNT(*), MIN(time_from), MAX(time_until),"
			 " SUM(size) FROM profiles GROUP BY service, type ORDER BY service, type",
			 NULL, service_row, &c);
}

struct trace_ctx {
	lp_trace_fn fn;
	void *ctx;
};

static int trace_row(sqlite3_stmt *s, void *ctx)
{
	struct trace_ctx *c = ctx;
	struct lp_trace_row r = {
		.trace_id = (const char *)sqlite3_column_text(s, 0),
		.total = sqlite3_column_int64(s, 1),
		.n_profiles = sqlite3_column_int64(s, 2),
		.services = (const char *)sqlite3_column_text(s, 3),
		.unit = (const char *)sqlite3_column_text(s, 4),
	};

	if (!r.trace_id || !r.services || !r.unit)
		return -ENOMEM;
	return c->fn(c->ctx, &r);
}

int lp_store_traces(struct lp_store *st, const struct lp_query *q, lp_trace_fn fn, void *ctx)
{
	struct trace_ctx c = { fn, ctx };
	char sql[768];

	snprintf(sql, sizeof(sql),
		 "SELECT t.trace_id, SUM(t.total) AS s, COUNT(*), group_concat(DISTINCT p.service),"
		 " MIN(p.value_unit) FROM trace_index t JOIN profiles p ON p.id = t.profile_id WHERE");
	where(sql, sizeof(sql), q);
	strcat(sql, " GROUP BY t.trace_id ORDER BY s DESC, t.trace_id LIMIT :limit");
	return read_rows(st, sql, q, trace_row, &c);
}

/* ---- retention ---------------------------------------------------------------------- */

#define BATCH 500

/* Deletes the profiles ids[0..n) and their trace rows: one transaction. */
static int delete_ids(struct lp_store *st, const int64_t *ids, size_t n)
{
	sqlite3_stmt *dt = NULL, *dp = NULL;
	int rc, err = exec(st->wr, "BEGIN IMMEDIATE");

	if (err)
		return err;
	rc = sqlite3_prepare_v2(st->wr, "DELETE FROM trace_index WHERE profile_id = ?", -1, &dt,
				NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(st->wr, "DELETE FROM profiles WHERE id = ?", -1, &dp, NULL);
	for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
		sqlite3_bind_int64(dt, 1, ids[i]);
		sqlite3_bind_int64(dp, 1, ids[i]);
		rc = sqlite3_step(dt);
		if (rc == SQLITE_DONE)
			rc = sqlite3_step(dp);
		if (rc == SQLITE_DONE)
			rc = SQLITE_OK;
		sqlite3_reset(dt);
		sqlite3_reset(dp);
	}
	err = rc == SQLITE_OK ? 0 : sql_err(st->wr, rc, "retention delete");
	sqlite3_finalize(dt);
	sqlite3_finalize(dp);
	err = err ? err : exec(st->wr, "COMMIT");
	if (err)
		(void)!exec(st->wr, "ROLLBACK");
	return err;
}

/*
 * One batch: the oldest profiles, those that end before cutoff_ns (age) or,
 * while the stored bytes exceed max_bytes, whatever is oldest (size).
 * Returns the number deleted (0: done) or a negative errno.
 */
static long retain_batch(struct lp_store *st, int64_t cutoff_ns, uint64_t max_bytes)
{
	int64_t ids[BATCH], over = 0;
	sqlite3_stmt *s = NULL;
	size_t n = 0;
	int rc, err;

	if (max_bytes) {
		rc = sqlite3_prepare_v2(st->wr, "SELECT total(size) FROM profiles", -1, &s, NULL);
		if (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
			over = (int64_t)sqlite3_column_double(s, 0) - (int64_t)max_bytes;
		sqlite3_finalize(s);
		s = NULL;
	}
	rc = sqlite3_prepare_v2(st->wr, "SELECT id, size, time_until FROM profiles"
				" ORDER BY time_until, id LIMIT ?", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return sql_err(st->wr, rc, "retention");
	sqlite3_bind_int(s, 1, BATCH);
	while (n < BATCH && sqlite3_step(s) == SQLITE_ROW) {
		int64_t size = sqlite3_column_int64(s, 1);

		if (sqlite3_column_int64(s, 2) >= cutoff_ns && over <= 0)
			break;
		ids[n++] = sqlite3_column_int64(s, 0);
		over -= size;
	}
	sqlite3_finalize(s);
	if (n == 0)
		return 0;
	err = delete_ids(st, ids, n);
	return err ? err : (long)n;
}

long lp_store_retain(struct lp_store *st, int64_t max_age_s, uint64_t max_bytes, int64_t now_ns)
{
	int64_t cutoff = max_age_s ? now_ns - max_age_s * 1000000000 : INT64_MIN;
	long total = 0, n;

	/* batch by batch, dropping the lock between them so ingest goes on */
	do {
		pthread_mutex_lock(&st->wr_mu);
		n = retain_batch(st, cutoff, max_bytes);
		pthread_mutex_unlock(&st->wr_mu);
		if (n > 0)
			total += n;
	} while (n == BATCH);
	if (n < 0)
		return n;
	if (total) {
		/* give the freed pages back to the file system */
		pthread_mutex_lock(&st->wr_mu);
		n = exec(st->wr, "PRAGMA incremental_vacuum; PRAGMA wal_checkpoint(TRUNCATE);");
		pthread_mutex_unlock(&st->wr_mu);
		if (n < 0)
			return n;
	}
	return total;
}
