/* Boson test guest (C): one wasi:http/incoming-handler@0.2.12 component that dispatches on the
 * first segment of the request path. See tests/guests/README.md for the routes.
 *
 * Built against the world `local:guest/guest-app` (wasi:http/proxy + wasi:cli/environment) and
 * componentized with the wasip1 *reactor* adapter so that libc's fopen/printf work (the proxy
 * adapter has no filesystem). */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest_app.h"

/* wasi:io output streams accept at most 4096 bytes per blocking-write-and-flush. */
#define WRITE_CHUNK 4096
#define READ_CHUNK 65536

/* ------------------------------------------------------------------ growable byte buffer */

typedef struct {
    uint8_t *ptr;
    size_t len, cap;
} buf_t;

static void buf_append(buf_t *b, const void *data, size_t len) {
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len) cap *= 2;
        uint8_t *p = realloc(b->ptr, cap);
        if (!p) __builtin_trap();
        b->ptr = p;
        b->cap = cap;
    }
    if (len) memcpy(b->ptr + b->len, data, len);
    b->len += len;
}

static void buf_puts(buf_t *b, const char *s) { buf_append(b, s, strlen(s)); }

static void buf_free(buf_t *b) {
    free(b->ptr);
    b->ptr = NULL;
    b->len = b->cap = 0;
}

/* Appends `s` as a JSON string literal (with quotes). Invalid UTF-8 becomes U+FFFD. */
static void buf_json_string(buf_t *b, const uint8_t *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    buf_puts(b, "\"");
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c == '"') {
            buf_puts(b, "\\\"");
            i++;
        } else if (c == '\\') {
            buf_puts(b, "\\\\");
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            char esc[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
            if (c == '\n') buf_puts(b, "\\n");
            else if (c == '\r') buf_puts(b, "\\r");
            else if (c == '\t') buf_puts(b, "\\t");
            else buf_puts(b, esc);
            i++;
        } else if (c < 0x80) {
            buf_append(b, &c, 1);
            i++;
        } else {
            /* validate one UTF-8 sequence */
            size_t n = 0;
            uint32_t cp = 0, min = 0;
            if ((c & 0xe0) == 0xc0) { n = 2; cp = c & 0x1f; min = 0x80; }
            else if ((c & 0xf0) == 0xe0) { n = 3; cp = c & 0x0f; min = 0x800; }
            else if ((c & 0xf8) == 0xf0) { n = 4; cp = c & 0x07; min = 0x10000; }
            int ok = n != 0 && i + n <= len;
            for (size_t k = 1; ok && k < n; k++) {
                if ((s[i + k] & 0xc0) != 0x80) ok = 0;
                else cp = (cp << 6) | (s[i + k] & 0x3f);
            }
            if (ok && (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))) ok = 0;
            if (ok) {
                buf_append(b, s + i, n);
                i += n;
            } else {
                buf_puts(b, "\xef\xbf\xbd");
                i++;
            }
        }
    }
    buf_puts(b, "\"");
}

/* ------------------------------------------------------------------ wasi helpers */

static const char *const ERROR_CODE_NAMES[] = {
    "dns-timeout", "dns-error", "destination-not-found", "destination-unavailable",
    "destination-ip-prohibited", "destination-ip-unroutable", "connection-refused",
    "connection-terminated", "connection-timeout", "connection-read-timeout",
    "connection-write-timeout", "connection-limit-reached", "tls-protocol-error",
    "tls-certificate-error", "tls-alert-received", "http-request-denied",
    "http-request-length-required", "http-request-body-size", "http-request-method-invalid",
    "http-request-uri-invalid", "http-request-uri-too-long", "http-request-header-section-size",
    "http-request-header-size", "http-request-trailer-section-size", "http-request-trailer-size",
    "http-response-incomplete", "http-response-header-section-size", "http-response-header-size",
    "http-response-body-size", "http-response-trailer-section-size", "http-response-trailer-size",
    "http-response-transfer-coding", "http-response-content-coding", "http-response-timeout",
    "http-upgrade-failed", "http-protocol-error", "loop-detected", "configuration-error",
    "internal-error",
};

/* Appends the error code as text, e.g. `connection-refused` or `internal-error(message)`. */
static void buf_error_code(buf_t *b, const wasi_http_types_error_code_t *err) {
    if (err->tag < sizeof(ERROR_CODE_NAMES) / sizeof(ERROR_CODE_NAMES[0])) {
        buf_puts(b, ERROR_CODE_NAMES[err->tag]);
    } else {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "error-code-%u", (unsigned)err->tag);
        buf_puts(b, tmp);
    }
    const guest_app_option_string_t *detail = NULL;
    if (err->tag == WASI_HTTP_TYPES_ERROR_CODE_INTERNAL_ERROR) detail = &err->val.internal_error;
    if (err->tag == WASI_HTTP_TYPES_ERROR_CODE_DNS_ERROR) detail = &err->val.dns_error.rcode;
    if (detail && detail->is_some) {
        buf_puts(b, "(");
        buf_append(b, detail->val.ptr, detail->val.len);
        buf_puts(b, ")");
    }
}

static const char *method_name(const wasi_http_types_method_t *m, char *other, size_t cap) {
    switch (m->tag) {
    case WASI_HTTP_TYPES_METHOD_GET: return "GET";
    case WASI_HTTP_TYPES_METHOD_HEAD: return "HEAD";
    case WASI_HTTP_TYPES_METHOD_POST: return "POST";
    case WASI_HTTP_TYPES_METHOD_PUT: return "PUT";
    case WASI_HTTP_TYPES_METHOD_DELETE: return "DELETE";
    case WASI_HTTP_TYPES_METHOD_CONNECT: return "CONNECT";
    case WASI_HTTP_TYPES_METHOD_OPTIONS: return "OPTIONS";
    case WASI_HTTP_TYPES_METHOD_TRACE: return "TRACE";
    case WASI_HTTP_TYPES_METHOD_PATCH: return "PATCH";
    default: {
        size_t n = m->val.other.len < cap - 1 ? m->val.other.len : cap - 1;
        memcpy(other, m->val.other.ptr, n);
        other[n] = 0;
        return other;
    }
    }
}

/* Reads an input stream to its end into `out`. Returns 0, or -1 with `err` set (and
 * `*have_err` true) when the stream failed with an HTTP error code. */
static int read_stream(wasi_io_streams_borrow_input_stream_t stream, buf_t *out,
                       wasi_http_types_error_code_t *err, int *have_err) {
    *have_err = 0;
    for (;;) {
        guest_app_list_u8_t chunk;
        wasi_io_streams_stream_error_t serr;
        if (!wasi_io_streams_method_input_stream_blocking_read(stream, READ_CHUNK, &chunk, &serr)) {
            if (serr.tag == WASI_IO_STREAMS_STREAM_ERROR_CLOSED) return 0;
            wasi_io_error_own_error_t e = serr.val.last_operation_failed;
            if (wasi_http_types_http_error_code(wasi_io_error_borrow_error(e), err)) *have_err = 1;
            wasi_io_error_error_drop_own(e);
            return -1;
        }
        buf_append(out, chunk.ptr, chunk.len);
        guest_app_list_u8_free(&chunk);
    }
}

/* Reads a whole incoming body (consumes `body`). */
static int read_body(wasi_http_types_own_incoming_body_t body, buf_t *out,
                     wasi_http_types_error_code_t *err, int *have_err) {
    wasi_http_types_own_input_stream_t stream;
    int rc = -1;
    *have_err = 0;
    if (wasi_http_types_method_incoming_body_stream(wasi_http_types_borrow_incoming_body(body), &stream)) {
        rc = read_stream(wasi_io_streams_borrow_input_stream(stream), out, err, have_err);
        wasi_io_streams_input_stream_drop_own(stream);
    }
    wasi_http_types_own_future_trailers_t trailers = wasi_http_types_static_incoming_body_finish(body);
    wasi_http_types_future_trailers_drop_own(trailers);
    return rc;
}

static void respond(exports_wasi_http_incoming_handler_own_response_outparam_t out, uint16_t status,
                    const char *content_type, const uint8_t *body, size_t len) {
    wasi_http_types_own_fields_t headers = wasi_http_types_constructor_fields();
    guest_app_string_t name;
    guest_app_string_set(&name, "content-type");
    wasi_http_types_field_value_t value = {(uint8_t *)content_type, strlen(content_type)};
    wasi_http_types_header_error_t herr;
    wasi_http_types_method_fields_append(wasi_http_types_borrow_fields(headers), &name, &value, &herr);

    wasi_http_types_own_outgoing_response_t response = wasi_http_types_constructor_outgoing_response(headers);
    wasi_http_types_method_outgoing_response_set_status_code(
        wasi_http_types_borrow_outgoing_response(response), status);
    wasi_http_types_own_outgoing_body_t obody;
    if (!wasi_http_types_method_outgoing_response_body(wasi_http_types_borrow_outgoing_response(response), &obody))
        __builtin_trap();

    wasi_http_types_result_own_outgoing_response_error_code_t result;
    memset(&result, 0, sizeof result);
    result.is_err = false;
    result.val.ok = response;
    wasi_http_types_static_response_outparam_set(out, &result);

    wasi_http_types_own_output_stream_t stream;
    if (wasi_http_types_method_outgoing_body_write(wasi_http_types_borrow_outgoing_body(obody), &stream)) {
        size_t off = 0;
        while (off < len) {
            size_t n = len - off < WRITE_CHUNK ? len - off : WRITE_CHUNK;
            guest_app_list_u8_t bytes = {(uint8_t *)body + off, n};
            wasi_io_streams_stream_error_t serr;
            if (!wasi_io_streams_method_output_stream_blocking_write_and_flush(
                    wasi_io_streams_borrow_output_stream(stream), &bytes, &serr)) {
                if (serr.tag == WASI_IO_STREAMS_STREAM_ERROR_LAST_OPERATION_FAILED)
                    wasi_io_error_error_drop_own(serr.val.last_operation_failed);
                break;
            }
            off += n;
        }
        wasi_io_streams_output_stream_drop_own(stream);
    }
    wasi_http_types_error_code_t ferr;
    wasi_http_types_static_outgoing_body_finish(obody, NULL, &ferr);
}

static void respond_text(exports_wasi_http_incoming_handler_own_response_outparam_t out, uint16_t status,
                         const char *text) {
    respond(out, status, "text/plain", (const uint8_t *)text, strlen(text));
}

static void respond_buf(exports_wasi_http_incoming_handler_own_response_outparam_t out, uint16_t status,
                        const char *content_type, buf_t *b) {
    respond(out, status, content_type, b->ptr, b->len);
    buf_free(b);
}

/* Finds header `name` (lowercase) in the request; returns a malloc'd NUL-terminated value or NULL. */
static char *request_header(wasi_http_types_borrow_incoming_request_t req, const char *name) {
    wasi_http_types_own_headers_t headers = wasi_http_types_method_incoming_request_headers(req);
    wasi_http_types_list_tuple2_field_name_field_value_t entries;
    wasi_http_types_method_fields_entries(wasi_http_types_borrow_fields(headers), &entries);
    char *found = NULL;
    size_t nlen = strlen(name);
    for (size_t i = 0; i < entries.len && !found; i++) {
        wasi_http_types_field_name_t *k = &entries.ptr[i].f0;
        if (k->len == nlen && strncasecmp((const char *)k->ptr, name, nlen) == 0) {
            wasi_http_types_field_value_t *v = &entries.ptr[i].f1;
            found = malloc(v->len + 1);
            memcpy(found, v->ptr, v->len);
            found[v->len] = 0;
        }
    }
    wasi_http_types_list_tuple2_field_name_field_value_free(&entries);
    wasi_http_types_fields_drop_own(headers);
    return found;
}

/* ------------------------------------------------------------------ routes */

static void route_env(exports_wasi_http_incoming_handler_own_response_outparam_t out, const char *name) {
    guest_app_list_tuple2_string_string_t env;
    wasi_cli_environment_get_environment(&env);
    size_t nlen = strlen(name);
    for (size_t i = 0; i < env.len; i++) {
        if (env.ptr[i].f0.len == nlen && memcmp(env.ptr[i].f0.ptr, name, nlen) == 0) {
            respond(out, 200, "text/plain", env.ptr[i].f1.ptr, env.ptr[i].f1.len);
            guest_app_list_tuple2_string_string_free(&env);
            return;
        }
    }
    guest_app_list_tuple2_string_string_free(&env);
    respond_text(out, 404, "not set\n");
}

static void route_file(exports_wasi_http_incoming_handler_own_response_outparam_t out, const char *rest) {
    buf_t path = {0};
    buf_puts(&path, "/");
    buf_puts(&path, rest);
    buf_append(&path, "", 1);
    FILE *f = fopen((const char *)path.ptr, "rb");
    buf_t body = {0};
    if (!f) {
        buf_puts(&body, "error: ");
        buf_puts(&body, strerror(errno));
        buf_puts(&body, "\n");
        buf_free(&path);
        respond_buf(out, 404, "text/plain", &body);
        return;
    }
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) buf_append(&body, chunk, n);
    int failed = ferror(f);
    int saved = errno;
    fclose(f);
    buf_free(&path);
    if (failed) {
        buf_free(&body);
        buf_puts(&body, "error: ");
        buf_puts(&body, strerror(saved));
        buf_puts(&body, "\n");
        respond_buf(out, 404, "text/plain", &body);
        return;
    }
    respond_buf(out, 200, "text/plain", &body);
}

static void route_outbound(exports_wasi_http_incoming_handler_own_response_outparam_t out,
                           wasi_http_types_borrow_incoming_request_t req) {
    buf_t body = {0};
    char *url = request_header(req, "x-target-url");
    if (!url) {
        respond_text(out, 502, "error: missing x-target-url header\n");
        return;
    }
    /* split "<scheme>://<authority><path-with-query>" */
    char *sep = strstr(url, "://");
    const char *scheme = "http", *authority = url;
    if (sep) {
        *sep = 0;
        scheme = url;
        authority = sep + 3;
    }
    size_t alen = strcspn(authority, "/?");
    char *auth = strndup(authority, alen);
    const char *pq = authority + alen;
    buf_t pathq = {0};
    if (*pq != '/') buf_puts(&pathq, "/");
    buf_puts(&pathq, pq);

    wasi_http_types_own_outgoing_request_t oreq =
        wasi_http_types_constructor_outgoing_request(wasi_http_types_constructor_fields());
    wasi_http_types_borrow_outgoing_request_t b = wasi_http_types_borrow_outgoing_request(oreq);
    wasi_http_types_method_t get = {.tag = WASI_HTTP_TYPES_METHOD_GET};
    wasi_http_types_method_outgoing_request_set_method(b, &get);
    wasi_http_types_scheme_t sch;
    memset(&sch, 0, sizeof sch);
    if (strcmp(scheme, "http") == 0) sch.tag = WASI_HTTP_TYPES_SCHEME_HTTP;
    else if (strcmp(scheme, "https") == 0) sch.tag = WASI_HTTP_TYPES_SCHEME_HTTPS;
    else {
        sch.tag = WASI_HTTP_TYPES_SCHEME_OTHER;
        guest_app_string_set(&sch.val.other, scheme);
    }
    wasi_http_types_method_outgoing_request_set_scheme(b, &sch);
    guest_app_string_t s_auth = {(uint8_t *)auth, strlen(auth)};
    wasi_http_types_method_outgoing_request_set_authority(b, &s_auth);
    guest_app_string_t s_pq = {pathq.ptr, pathq.len};
    wasi_http_types_method_outgoing_request_set_path_with_query(b, &s_pq);

    /* `x-request-options: connect=<ms>,first-byte=<ms>,between-bytes=<ms>` (any of them) sets
     * the request's timeouts. */
    char *opts_header = request_header(req, "x-request-options");
    wasi_http_types_own_request_options_t opts;
    bool have_opts = opts_header != NULL;
    if (have_opts) {
        opts = wasi_http_types_constructor_request_options();
        wasi_http_types_borrow_request_options_t ob = wasi_http_types_borrow_request_options(opts);
        for (char *item = strtok(opts_header, ","); item; item = strtok(NULL, ",")) {
            char *eq = strchr(item, '=');
            if (!eq) continue;
            *eq = 0;
            wasi_http_types_duration_t d = strtoull(eq + 1, NULL, 10) * 1000000ull;
            if (strcmp(item, "connect") == 0)
                wasi_http_types_method_request_options_set_connect_timeout(ob, &d);
            else if (strcmp(item, "first-byte") == 0)
                wasi_http_types_method_request_options_set_first_byte_timeout(ob, &d);
            else if (strcmp(item, "between-bytes") == 0)
                wasi_http_types_method_request_options_set_between_bytes_timeout(ob, &d);
        }
        free(opts_header);
    }

    wasi_http_types_own_future_incoming_response_t future;
    wasi_http_types_error_code_t err;
    if (!wasi_http_outgoing_handler_handle(oreq, have_opts ? &opts : NULL, &future, &err)) {
        buf_puts(&body, "error: ");
        buf_error_code(&body, &err);
        buf_puts(&body, "\n");
        wasi_http_types_error_code_free(&err);
        goto done_502;
    }
    wasi_http_types_result_result_own_incoming_response_error_code_void_t res;
    wasi_http_types_borrow_future_incoming_response_t fb = wasi_http_types_borrow_future_incoming_response(future);
    while (!wasi_http_types_method_future_incoming_response_get(fb, &res)) {
        wasi_http_types_own_pollable_t p = wasi_http_types_method_future_incoming_response_subscribe(fb);
        wasi_io_poll_method_pollable_block(wasi_io_poll_borrow_pollable(p));
        wasi_io_poll_pollable_drop_own(p);
    }
    wasi_http_types_future_incoming_response_drop_own(future);
    if (res.is_err) {
        buf_puts(&body, "error: future-incoming-response already consumed\n");
        goto done_502;
    }
    if (res.val.ok.is_err) {
        buf_puts(&body, "error: ");
        buf_error_code(&body, &res.val.ok.val.err);
        buf_puts(&body, "\n");
        wasi_http_types_error_code_free(&res.val.ok.val.err);
        goto done_502;
    }
    wasi_http_types_own_incoming_response_t resp = res.val.ok.val.ok;
    wasi_http_types_borrow_incoming_response_t rb = wasi_http_types_borrow_incoming_response(resp);
    unsigned status = wasi_http_types_method_incoming_response_status(rb);
    char line[32];
    snprintf(line, sizeof line, "status=%u\n", status);
    buf_puts(&body, line);
    wasi_http_types_own_incoming_body_t ibody;
    if (!wasi_http_types_method_incoming_response_consume(rb, &ibody)) {
        wasi_http_types_incoming_response_drop_own(resp);
        buf_free(&body);
        buf_puts(&body, "error: response body already consumed\n");
        goto done_502;
    }
    int have_err;
    if (read_body(ibody, &body, &err, &have_err) != 0) {
        wasi_http_types_incoming_response_drop_own(resp);
        buf_free(&body);
        buf_puts(&body, "error: ");
        if (have_err) {
            buf_error_code(&body, &err);
            wasi_http_types_error_code_free(&err);
        } else {
            buf_puts(&body, "reading the response body failed");
        }
        buf_puts(&body, "\n");
        goto done_502;
    }
    wasi_http_types_incoming_response_drop_own(resp);
    free(url);
    free(auth);
    buf_free(&pathq);
    respond_buf(out, 200, "text/plain", &body);
    return;

done_502:
    free(url);
    free(auth);
    buf_free(&pathq);
    respond_buf(out, 502, "text/plain", &body);
}

/* /fs/<op>/<path>: tries one write-side operation on a path; 200 "done" when it worked, 403 with
 * the errno text when it was refused. The sandbox tests expect every op on a read-only mount to
 * be refused. */
static void route_fs(exports_wasi_http_incoming_handler_own_response_outparam_t out, const char *rest) {
    size_t olen = strcspn(rest, "/");
    char *op = strndup(rest, olen);
    buf_t path = {0}, other = {0};
    buf_puts(&path, "/");
    if (rest[olen] == '/') buf_puts(&path, rest + olen + 1);
    buf_append(&path, "", 1);
    const char *p = (const char *)path.ptr;
    buf_puts(&other, p);
    buf_puts(&other, ".new");
    buf_append(&other, "", 1);
    const char *q = (const char *)other.ptr;
    int rc = -1;
    errno = 0;
    if (strcmp(op, "write") == 0 || strcmp(op, "truncate") == 0 || strcmp(op, "append") == 0 ||
        strcmp(op, "create") == 0) {
        int flags = O_WRONLY;
        if (op[0] == 't') flags |= O_TRUNC;
        if (op[0] == 'a') flags |= O_APPEND;
        if (op[0] == 'c') { flags |= O_CREAT | O_EXCL; p = q; }
        int fd = open(p, flags, 0644);
        if (fd >= 0) {
            rc = write(fd, "x", 1) == 1 ? 0 : -1;
            close(fd);
        }
    } else if (strcmp(op, "rename") == 0) {
        rc = rename(p, q);
    } else if (strcmp(op, "rename-in") == 0) {
        rc = rename(q, p);
    } else if (strcmp(op, "link") == 0) {
        rc = link(p, q);
    } else if (strcmp(op, "symlink") == 0) {
        rc = symlink("/etc/passwd", q);
    } else if (strcmp(op, "unlink") == 0) {
        rc = unlink(p);
    } else if (strcmp(op, "mkdir") == 0) {
        rc = mkdir(q, 0755);
    } else {
        errno = EINVAL;
    }
    buf_t body = {0};
    if (rc == 0) {
        buf_puts(&body, "done\n");
    } else {
        buf_puts(&body, "error: ");
        buf_puts(&body, strerror(errno));
        buf_puts(&body, "\n");
    }
    respond_buf(out, rc == 0 ? 200 : 403, "text/plain", &body);
    buf_free(&path);
    buf_free(&other);
    free(op);
}

/* /abuse/<what>: asks the host for more than it should give. Each reports what the host allowed
 * (or traps, when the host refuses by trapping). */
static void route_abuse(exports_wasi_http_incoming_handler_own_response_outparam_t out, const char *what) {
    char line[160];
    if (strcmp(what, "random") == 0) {
        /* 1 GiB of random bytes in one call */
        guest_app_list_u8_t bytes;
        wasi_random_random_get_random_bytes(1ull << 30, &bytes);
        snprintf(line, sizeof line, "got %zu random bytes\n", bytes.len);
        guest_app_list_u8_free(&bytes);
        respond_text(out, 200, line);
    } else if (strcmp(what, "headers") == 0) {
        /* 100,000 response headers */
        wasi_http_types_own_fields_t headers = wasi_http_types_constructor_fields();
        size_t appended = 0;
        for (size_t i = 0; i < 100000; i++) {
            char name[32];
            snprintf(name, sizeof name, "x-h-%zu", i);
            guest_app_string_t n;
            guest_app_string_set(&n, name);
            wasi_http_types_field_value_t v = {(uint8_t *)"value", 5};
            wasi_http_types_header_error_t herr;
            if (wasi_http_types_method_fields_append(wasi_http_types_borrow_fields(headers), &n, &v, &herr))
                appended++;
        }
        wasi_http_types_fields_drop_own(headers);
        snprintf(line, sizeof line, "appended %zu of 100000 headers\n", appended);
        respond_text(out, 200, line);
    } else if (strcmp(what, "big-header") == 0) {
        /* one header value as large as the guest can allocate, up to 1 GiB */
        size_t len = 1ull << 30;
        uint8_t *value = NULL;
        while (len >= 4096 && !(value = malloc(len))) len /= 2;
        if (!value) __builtin_trap();
        memset(value, 'a', len);
        wasi_http_types_own_fields_t headers = wasi_http_types_constructor_fields();
        guest_app_string_t n;
        guest_app_string_set(&n, "x-big");
        wasi_http_types_field_value_t v = {value, len};
        wasi_http_types_header_error_t herr;
        int ok = wasi_http_types_method_fields_append(wasi_http_types_borrow_fields(headers), &n, &v, &herr);
        wasi_http_types_fields_drop_own(headers);
        free(value);
        snprintf(line, sizeof line, "a %zu-byte header was %s\n", len, ok ? "accepted" : "refused");
        respond_text(out, 200, line);
    } else if (strcmp(what, "handles") == 0) {
        /* a million resource handles, never dropped */
        for (size_t i = 0; i < 1000000; i++) (void)wasi_http_types_constructor_fields();
        respond_text(out, 200, "made 1000000 handles\n");
    } else {
        respond_text(out, 404, "unknown abuse\n");
    }
}

/* /big/<bytes>: a response body of that many bytes, streamed in chunks. */
static void route_big(exports_wasi_http_incoming_handler_own_response_outparam_t out, const char *rest) {
    unsigned long long total = strtoull(rest, NULL, 10);
    wasi_http_types_own_outgoing_response_t response =
        wasi_http_types_constructor_outgoing_response(wasi_http_types_constructor_fields());
    wasi_http_types_own_outgoing_body_t obody;
    if (!wasi_http_types_method_outgoing_response_body(wasi_http_types_borrow_outgoing_response(response), &obody))
        __builtin_trap();
    wasi_http_types_result_own_outgoing_response_error_code_t result;
    memset(&result, 0, sizeof result);
    result.val.ok = response;
    wasi_http_types_static_response_outparam_set(out, &result);
    wasi_http_types_own_output_stream_t stream;
    if (wasi_http_types_method_outgoing_body_write(wasi_http_types_borrow_outgoing_body(obody), &stream)) {
        static uint8_t chunk[WRITE_CHUNK];
        memset(chunk, 'x', sizeof chunk);
        for (unsigned long long off = 0; off < total;) {
            size_t n = total - off < WRITE_CHUNK ? (size_t)(total - off) : WRITE_CHUNK;
            guest_app_list_u8_t bytes = {chunk, n};
            wasi_io_streams_stream_error_t serr;
            if (!wasi_io_streams_method_output_stream_blocking_write_and_flush(
                    wasi_io_streams_borrow_output_stream(stream), &bytes, &serr)) {
                if (serr.tag == WASI_IO_STREAMS_STREAM_ERROR_LAST_OPERATION_FAILED)
                    wasi_io_error_error_drop_own(serr.val.last_operation_failed);
                break; /* the client went away */
            }
            off += n;
        }
        wasi_io_streams_output_stream_drop_own(stream);
    }
    wasi_http_types_error_code_t ferr;
    wasi_http_types_static_outgoing_body_finish(obody, NULL, &ferr);
}

/* /bulk: grows memory to the cap, then fills and copies all of it forever (memory.fill /
 * memory.copy when built with -mbulk-memory): how far past its deadline can one bulk operation
 * run? */
static void route_bulk(void) {
    size_t len = 1ull << 30;
    uint8_t *block = NULL;
    while (len >= 4096 && !(block = malloc(len))) len /= 2;
    if (!block) __builtin_trap();
    size_t half = len / 2;
    for (uint8_t round = 0;; round++) {
        __builtin_memset(block, round, len);
        __builtin_memmove(block, block + half, half);
    }
}

static void route_loop(void) {
    volatile uint64_t counter = 0;
    for (;;) counter++;
}

static void *volatile alloc_head;

static void route_alloc(void) {
    for (;;) {
        void **chunk = malloc(1 << 20);
        if (!chunk) __builtin_trap();
        memset(chunk, 0xab, 1 << 20);
        chunk[0] = alloc_head; /* keep every chunk reachable: never freed, never elided */
        alloc_head = chunk;
    }
}

/* Unbounded recursion on the wasm stack only (no address-taken locals, so no shadow-stack use;
 * optnone keeps the compiler from turning it into a loop): ends in a stack-overflow trap. */
static volatile uint64_t recurse_limit = UINT64_MAX; /* never reached: keeps the compiler honest */

__attribute__((noinline, optnone)) static uint64_t recurse(uint64_t n) {
    if (n == recurse_limit) return n;
    return recurse(n + 1) * 3 + n;
}

static void route_stdout(exports_wasi_http_incoming_handler_own_response_outparam_t out) {
    fputs("guest says hi on stdout\n", stdout);
    fflush(stdout);
    fputs("guest says hi on stderr\n", stderr);
    fflush(stderr);
    respond_text(out, 200, "logged\n");
}

static void route_sleep(exports_wasi_http_incoming_handler_own_response_outparam_t out, const char *rest) {
    unsigned long long ms = strtoull(rest, NULL, 10);
    wasi_clocks_monotonic_clock_own_pollable_t p =
        wasi_clocks_monotonic_clock_subscribe_duration((uint64_t)ms * 1000000ull);
    wasi_io_poll_method_pollable_block(wasi_io_poll_borrow_pollable(p));
    wasi_io_poll_pollable_drop_own(p);
    respond_text(out, 200, "slept\n");
}

/* How many requests this instance has served: 1 in a fresh instance. */
static unsigned served;

static void route_count(exports_wasi_http_incoming_handler_own_response_outparam_t out) {
    char text[32];
    snprintf(text, sizeof text, "served %u\n", ++served);
    respond_text(out, 200, text);
}

/* When this instance was built (the monotonic clock, ns): a constructor, run by the reactor's
 * `_initialize`, which the component calls while it is instantiated. */
static uint64_t instantiated_at;

__attribute__((constructor)) static void note_instantiation(void) {
    instantiated_at = wasi_clocks_monotonic_clock_now();
    /* A start function that waits: the host's stdout takes the line asynchronously. */
    if (getenv("GUEST_PRINT_AT_START") != NULL) {
        fputs("instantiating\n", stdout);
        fflush(stdout);
    }
}

/* How long ago this instance was built, in whole milliseconds: about 0 when its request built
 * it, the time since it was built ahead otherwise. */
static void route_age(exports_wasi_http_incoming_handler_own_response_outparam_t out) {
    char text[32];
    snprintf(text, sizeof text, "%llu\n",
             (unsigned long long)((wasi_clocks_monotonic_clock_now() - instantiated_at) / 1000000ull));
    respond_text(out, 200, text);
}

/* Computes (no waiting) until <ms> milliseconds of the monotonic clock have passed. */
static void route_busy(exports_wasi_http_incoming_handler_own_response_outparam_t out, const char *rest) {
    uint64_t until = wasi_clocks_monotonic_clock_now() + strtoull(rest, NULL, 10) * 1000000ull;
    volatile uint64_t spins = 0;
    while (wasi_clocks_monotonic_clock_now() < until) spins++;
    respond_text(out, 200, "done\n");
}

/* 64 KiB of zeros in a fresh instance. Each request counts the bytes it finds set, sets them all,
 * then waits <ms> milliseconds before it answers the count: anything but 0 is what an earlier
 * request left, seen because its instance's memory was not reset. */
static volatile unsigned char residue[64 * 1024] __attribute__((aligned(4096)));

static void route_residue(exports_wasi_http_incoming_handler_own_response_outparam_t out, const char *rest) {
    size_t found = 0;
    for (size_t i = 0; i < sizeof residue; i++) found += residue[i] != 0;
    for (size_t i = 0; i < sizeof residue; i++) residue[i] = 0xA5;
    wasi_clocks_monotonic_clock_own_pollable_t p =
        wasi_clocks_monotonic_clock_subscribe_duration(strtoull(rest, NULL, 10) * 1000000ull);
    wasi_io_poll_method_pollable_block(wasi_io_poll_borrow_pollable(p));
    wasi_io_poll_pollable_drop_own(p);
    char text[32];
    snprintf(text, sizeof text, "%zu\n", found);
    respond_text(out, 200, text);
}

static void route_echo(exports_wasi_http_incoming_handler_own_response_outparam_t out,
                       exports_wasi_http_incoming_handler_own_incoming_request_t request,
                       const char *path_with_query) {
    wasi_http_types_borrow_incoming_request_t req = wasi_http_types_borrow_incoming_request(request);
    wasi_http_types_method_t m;
    wasi_http_types_method_incoming_request_method(req, &m);
    char other[256];
    const char *method = method_name(&m, other, sizeof other);

    buf_t json = {0};
    buf_puts(&json, "{\"method\": ");
    buf_json_string(&json, (const uint8_t *)method, strlen(method));
    wasi_http_types_method_free(&m);
    buf_puts(&json, ", \"path\": ");
    buf_json_string(&json, (const uint8_t *)path_with_query, strlen(path_with_query));
    buf_puts(&json, ", \"headers\": {");

    /* group repeated headers (case-insensitively), keeping first-seen order */
    wasi_http_types_own_headers_t headers = wasi_http_types_method_incoming_request_headers(req);
    wasi_http_types_list_tuple2_field_name_field_value_t entries;
    wasi_http_types_method_fields_entries(wasi_http_types_borrow_fields(headers), &entries);
    size_t n = entries.len;
    char **names = calloc(n ? n : 1, sizeof(char *));
    buf_t *values = calloc(n ? n : 1, sizeof(buf_t));
    size_t groups = 0;
    for (size_t i = 0; i < n; i++) {
        wasi_http_types_field_name_t *k = &entries.ptr[i].f0;
        wasi_http_types_field_value_t *v = &entries.ptr[i].f1;
        char *lname = strndup((const char *)k->ptr, k->len);
        for (char *c = lname; *c; c++)
            if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
        size_t g = 0;
        while (g < groups && strcmp(names[g], lname) != 0) g++;
        if (g == groups) {
            names[groups++] = lname;
        } else {
            free(lname);
            buf_puts(&values[g], ", ");
        }
        buf_append(&values[g], v->ptr, v->len);
    }
    for (size_t g = 0; g < groups; g++) {
        if (g) buf_puts(&json, ", ");
        buf_json_string(&json, (const uint8_t *)names[g], strlen(names[g]));
        buf_puts(&json, ": ");
        buf_json_string(&json, values[g].ptr, values[g].len);
        free(names[g]);
        buf_free(&values[g]);
    }
    free(names);
    free(values);
    wasi_http_types_list_tuple2_field_name_field_value_free(&entries);
    wasi_http_types_fields_drop_own(headers);
    buf_puts(&json, "}, \"body\": ");

    buf_t body = {0};
    wasi_http_types_own_incoming_body_t ibody;
    if (wasi_http_types_method_incoming_request_consume(req, &ibody)) {
        wasi_http_types_error_code_t err;
        int have_err;
        if (read_body(ibody, &body, &err, &have_err) != 0 && have_err) wasi_http_types_error_code_free(&err);
    }
    buf_json_string(&json, body.ptr, body.len);
    buf_free(&body);
    buf_puts(&json, "}");
    wasi_http_types_incoming_request_drop_own(request);
    respond_buf(out, 200, "application/json", &json);
}

/* ------------------------------------------------------------------ entry point */

void exports_wasi_http_incoming_handler_handle(
    exports_wasi_http_incoming_handler_own_incoming_request_t request,
    exports_wasi_http_incoming_handler_own_response_outparam_t response_out) {
    wasi_http_types_borrow_incoming_request_t req = wasi_http_types_borrow_incoming_request(request);

    guest_app_string_t pq;
    char *path_with_query;
    if (wasi_http_types_method_incoming_request_path_with_query(req, &pq)) {
        path_with_query = strndup((const char *)pq.ptr, pq.len);
        guest_app_string_free(&pq);
    } else {
        path_with_query = strdup("/");
    }
    /* path without the query; first segment and the rest after it */
    char *path = strndup(path_with_query, strcspn(path_with_query, "?"));
    const char *p = path[0] == '/' ? path + 1 : path;
    size_t flen = strcspn(p, "/");
    char *first = strndup(p, flen);
    const char *rest = p[flen] == '/' ? p + flen + 1 : p + flen;

    if (strcmp(first, "hello") == 0) {
        respond_text(response_out, 200, "hello\n");
    } else if (strcmp(first, "env") == 0) {
        route_env(response_out, rest);
    } else if (strcmp(first, "file") == 0) {
        route_file(response_out, rest);
    } else if (strcmp(first, "outbound") == 0) {
        route_outbound(response_out, req);
    } else if (strcmp(first, "loop") == 0) {
        route_loop();
    } else if (strcmp(first, "alloc") == 0) {
        route_alloc();
    } else if (strcmp(first, "recurse") == 0) {
        recurse(0);
    } else if (strcmp(first, "trap") == 0) {
        __builtin_trap();
    } else if (strcmp(first, "stdout") == 0) {
        route_stdout(response_out);
    } else if (strcmp(first, "sleep") == 0) {
        route_sleep(response_out, rest);
    } else if (strcmp(first, "count") == 0) {
        route_count(response_out);
    } else if (strncmp(first, "age", 3) == 0) { /* any "age…": one route per component */
        route_age(response_out);
    } else if (strcmp(first, "busy") == 0) {
        route_busy(response_out, rest);
    } else if (strcmp(first, "residue") == 0) {
        route_residue(response_out, rest);
    } else if (strcmp(first, "fs") == 0) {
        route_fs(response_out, rest);
    } else if (strcmp(first, "abuse") == 0) {
        route_abuse(response_out, rest);
    } else if (strcmp(first, "big") == 0) {
        route_big(response_out, rest);
    } else if (strcmp(first, "bulk") == 0) {
        route_bulk();
    } else {
        route_echo(response_out, request, path_with_query);
        request.__handle = 0; /* consumed by route_echo */
    }
    if (request.__handle) wasi_http_types_incoming_request_drop_own(request);
    free(first);
    free(path);
    free(path_with_query);
}
