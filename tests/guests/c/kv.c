/* Boson test guest (C): Spin key-value stores, variables, SQLite, outbound Redis, PostgreSQL,
 * MySQL and MQTT (fermyon:spin@2.0.0), wasi:keyvalue (store, atomics, batch @0.2.0-draft2) and wasi:config/store,
 * behind one wasi:http/incoming-handler@0.2.12. See tests/guests/README.md for the routes.
 *
 * Built against the world `local:guest/kv-app` (= wasi:http/proxy@0.2.12 + Boson's
 * boson:platform/capabilities from crates/boson/wit), componentized with the wasip1 proxy
 * adapter. Path segments and query values are percent-decoded. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_app.h"

/* wasi:io output streams accept at most 4096 bytes per blocking-write-and-flush. */
#define WRITE_CHUNK 4096
#define READ_CHUNK 65536

typedef exports_wasi_http_incoming_handler_own_response_outparam_t outparam_t;

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

/* Length of the valid UTF-8 sequence starting at s[i] (a non-ASCII lead byte), or 0 if it is
 * invalid (truncated, overlong, surrogate, beyond U+10FFFF). */
static size_t utf8_seq_len(const uint8_t *s, size_t len, size_t i) {
    uint8_t c = s[i];
    size_t n = 0;
    uint32_t cp = 0, min = 0;
    if ((c & 0xe0) == 0xc0) { n = 2; cp = c & 0x1f; min = 0x80; }
    else if ((c & 0xf0) == 0xe0) { n = 3; cp = c & 0x0f; min = 0x800; }
    else if ((c & 0xf8) == 0xf0) { n = 4; cp = c & 0x07; min = 0x10000; }
    if (n == 0 || i + n > len) return 0;
    for (size_t k = 1; k < n; k++) {
        if ((s[i + k] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return n;
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
            buf_puts(b, esc);
            i++;
        } else if (c < 0x80) {
            buf_append(b, &c, 1);
            i++;
        } else {
            size_t n = utf8_seq_len(s, len, i);
            if (n) {
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

/* ------------------------------------------------------------------ strings */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into a malloc'd, NUL-terminated string ("%zz" stays as it is). */
static char *pct_decode(const char *s, size_t n) {
    char *out = malloc(n + 1);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[j++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = 0;
    return out;
}

/* A WIT string viewing a C string (not owned). */
static kv_app_string_t str_of(const char *s) {
    kv_app_string_t r = {(uint8_t *)s, strlen(s)};
    return r;
}

/* Returns the percent-decoded value of query parameter `name` (malloc'd), or NULL. */
static char *query_param(const char *query, const char *name) {
    size_t nlen = strlen(name);
    const char *p = query;
    while (p && *p) {
        size_t len = strcspn(p, "&");
        if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=')
            return pct_decode(p + nlen + 1, len - nlen - 1);
        if (len == nlen && strncmp(p, name, nlen) == 0) return strdup("");
        p += len;
        if (*p == '&') p++;
    }
    return NULL;
}

/* Splits a comma-separated list into a WIT list of (malloc'd) strings; "" gives an empty list. */
static kv_app_list_string_t split_keys(const char *s) {
    kv_app_list_string_t list = {NULL, 0};
    if (!s || !*s) return list;
    size_t n = 1;
    for (const char *c = s; *c; c++)
        if (*c == ',') n++;
    list.ptr = calloc(n, sizeof(kv_app_string_t));
    const char *p = s;
    for (;;) {
        size_t len = strcspn(p, ",");
        list.ptr[list.len].ptr = (uint8_t *)strndup(p, len);
        list.ptr[list.len].len = len;
        list.len++;
        if (p[len] != ',') break;
        p += len + 1;
    }
    return list;
}

static int cmp_bytes(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c) return c;
    return alen < blen ? -1 : alen > blen;
}

static int cmp_string(const void *a, const void *b) {
    const kv_app_string_t *x = a, *y = b;
    return cmp_bytes(x->ptr, x->len, y->ptr, y->len);
}

static int cmp_pair_key(const void *a, const void *b) {
    const kv_app_tuple2_string_string_t *x = a, *y = b;
    return cmp_bytes(x->f0.ptr, x->f0.len, y->f0.ptr, y->f0.len);
}

/* ------------------------------------------------------------------ wasi:http helpers */

/* Reads the whole request body into `out` (consumes it). Returns 0 or -1. */
static int read_request_body(wasi_http_types_borrow_incoming_request_t req, buf_t *out) {
    wasi_http_types_own_incoming_body_t body;
    if (!wasi_http_types_method_incoming_request_consume(req, &body)) return -1;
    int rc = -1;
    wasi_http_types_own_input_stream_t stream;
    if (wasi_http_types_method_incoming_body_stream(wasi_http_types_borrow_incoming_body(body), &stream)) {
        wasi_io_streams_borrow_input_stream_t s = wasi_io_streams_borrow_input_stream(stream);
        for (;;) {
            kv_app_list_u8_t chunk;
            wasi_io_streams_stream_error_t serr;
            if (!wasi_io_streams_method_input_stream_blocking_read(s, READ_CHUNK, &chunk, &serr)) {
                if (serr.tag == WASI_IO_STREAMS_STREAM_ERROR_CLOSED) rc = 0;
                else wasi_io_error_error_drop_own(serr.val.last_operation_failed);
                break;
            }
            buf_append(out, chunk.ptr, chunk.len);
            kv_app_list_u8_free(&chunk);
        }
        wasi_io_streams_input_stream_drop_own(stream);
    }
    wasi_http_types_own_future_trailers_t trailers = wasi_http_types_static_incoming_body_finish(body);
    wasi_http_types_future_trailers_drop_own(trailers);
    return rc;
}

static void respond(outparam_t out, uint16_t status, const char *content_type, const uint8_t *body,
                    size_t len) {
    wasi_http_types_own_fields_t headers = wasi_http_types_constructor_fields();
    kv_app_string_t name = str_of("content-type");
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
            kv_app_list_u8_t bytes = {(uint8_t *)body + off, n};
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

static void respond_text(outparam_t out, uint16_t status, const char *text) {
    respond(out, status, "text/plain", (const uint8_t *)text, strlen(text));
}

/* 500 "error: <text>" */
static void respond_error(outparam_t out, const kv_app_string_t *text) {
    buf_t b = {0};
    buf_puts(&b, "error: ");
    buf_append(&b, text->ptr, text->len);
    respond(out, 500, "text/plain", b.ptr, b.len);
    buf_free(&b);
}

static void respond_buf(outparam_t out, uint16_t status, const char *content_type, buf_t *b) {
    respond(out, status, content_type, b->ptr, b->len);
    buf_free(b);
}

/* ------------------------------------------------------------------ fermyon:spin/key-value */

static void spin_kv_error(outparam_t out, fermyon_spin_2_0_0_key_value_error_t *err) {
    switch (err->tag) {
    case FERMYON_SPIN_2_0_0_KEY_VALUE_ERROR_ACCESS_DENIED: respond_text(out, 403, "access-denied"); break;
    case FERMYON_SPIN_2_0_0_KEY_VALUE_ERROR_NO_SUCH_STORE: respond_text(out, 404, "no-such-store"); break;
    case FERMYON_SPIN_2_0_0_KEY_VALUE_ERROR_STORE_TABLE_FULL: respond_text(out, 500, "error: store-table-full"); break;
    case FERMYON_SPIN_2_0_0_KEY_VALUE_ERROR_OTHER: respond_error(out, &err->val.other); break;
    default: respond_text(out, 500, "error: unknown key-value error"); break;
    }
    fermyon_spin_2_0_0_key_value_error_free(err);
}

/* /kv/<label>/{get,set,delete,exists}/<key>, /kv/<label>/keys */
static void route_kv(outparam_t out, wasi_http_types_borrow_incoming_request_t req, char **seg, size_t nseg) {
    const char *op = nseg >= 3 ? seg[2] : "";
    int with_key = strcmp(op, "get") == 0 || strcmp(op, "set") == 0 || strcmp(op, "delete") == 0 ||
                   strcmp(op, "exists") == 0;
    if (!((with_key && nseg == 4) || (strcmp(op, "keys") == 0 && nseg == 3))) {
        respond_text(out, 404, "not-found");
        return;
    }
    kv_app_string_t label = str_of(seg[1]);
    kv_app_string_t key = str_of(with_key ? seg[3] : "");
    fermyon_spin_2_0_0_key_value_own_store_t store;
    fermyon_spin_2_0_0_key_value_error_t err;
    if (!fermyon_spin_2_0_0_key_value_static_store_open(&label, &store, &err)) {
        spin_kv_error(out, &err);
        return;
    }
    fermyon_spin_2_0_0_key_value_borrow_store_t s = fermyon_spin_2_0_0_key_value_borrow_store(store);

    if (strcmp(op, "get") == 0) {
        kv_app_option_list_u8_t value;
        if (!fermyon_spin_2_0_0_key_value_method_store_get(s, &key, &value, &err)) spin_kv_error(out, &err);
        else if (!value.is_some) respond_text(out, 404, "missing");
        else {
            respond(out, 200, "text/plain", value.val.ptr, value.val.len);
            kv_app_option_list_u8_free(&value);
        }
    } else if (strcmp(op, "set") == 0) {
        buf_t body = {0};
        if (read_request_body(req, &body) != 0) {
            respond_text(out, 500, "error: reading the request body failed");
        } else {
            kv_app_list_u8_t value = {body.ptr, body.len};
            if (!fermyon_spin_2_0_0_key_value_method_store_set(s, &key, &value, &err)) spin_kv_error(out, &err);
            else respond_text(out, 200, "ok");
        }
        buf_free(&body);
    } else if (strcmp(op, "delete") == 0) {
        if (!fermyon_spin_2_0_0_key_value_method_store_delete(s, &key, &err)) spin_kv_error(out, &err);
        else respond_text(out, 200, "ok");
    } else if (strcmp(op, "exists") == 0) {
        bool exists;
        if (!fermyon_spin_2_0_0_key_value_method_store_exists(s, &key, &exists, &err)) spin_kv_error(out, &err);
        else respond_text(out, 200, exists ? "true" : "false");
    } else { /* keys */
        kv_app_list_string_t keys;
        if (!fermyon_spin_2_0_0_key_value_method_store_get_keys(s, &keys, &err)) {
            spin_kv_error(out, &err);
        } else {
            if (keys.len) qsort(keys.ptr, keys.len, sizeof(kv_app_string_t), cmp_string);
            buf_t json = {0};
            buf_puts(&json, "[");
            for (size_t i = 0; i < keys.len; i++) {
                if (i) buf_puts(&json, ",");
                buf_json_string(&json, keys.ptr[i].ptr, keys.ptr[i].len);
            }
            buf_puts(&json, "]");
            kv_app_list_string_free(&keys);
            respond_buf(out, 200, "application/json", &json);
        }
    }
    fermyon_spin_2_0_0_key_value_store_drop_own(store);
}

/* ------------------------------------------------------------------ fermyon:spin/variables */

static void route_var(outparam_t out, char **seg, size_t nseg) {
    if (nseg != 2) {
        respond_text(out, 404, "not-found");
        return;
    }
    kv_app_string_t name = str_of(seg[1]), value;
    fermyon_spin_2_0_0_variables_error_t err;
    if (fermyon_spin_2_0_0_variables_get(&name, &value, &err)) {
        respond(out, 200, "text/plain", value.ptr, value.len);
        kv_app_string_free(&value);
        return;
    }
    switch (err.tag) {
    case FERMYON_SPIN_2_0_0_VARIABLES_ERROR_INVALID_NAME: respond_text(out, 400, "invalid-name"); break;
    case FERMYON_SPIN_2_0_0_VARIABLES_ERROR_UNDEFINED: respond_text(out, 404, "undefined"); break;
    case FERMYON_SPIN_2_0_0_VARIABLES_ERROR_PROVIDER: respond_error(out, &err.val.provider); break;
    case FERMYON_SPIN_2_0_0_VARIABLES_ERROR_OTHER: respond_error(out, &err.val.other); break;
    default: respond_text(out, 500, "error: unknown variables error"); break;
    }
    fermyon_spin_2_0_0_variables_error_free(&err);
}

/* ------------------------------------------------------------------ wasi:config/store */

static void config_error(outparam_t out, wasi_config_store_error_t *err) {
    switch (err->tag) {
    case WASI_CONFIG_STORE_ERROR_UPSTREAM: respond_error(out, &err->val.upstream); break;
    case WASI_CONFIG_STORE_ERROR_IO: respond_error(out, &err->val.io); break;
    default: respond_text(out, 500, "error: unknown config error"); break;
    }
    wasi_config_store_error_free(err);
}

static void route_config(outparam_t out, char **seg, size_t nseg) {
    if (nseg != 2) {
        respond_text(out, 404, "not-found");
        return;
    }
    kv_app_string_t key = str_of(seg[1]);
    kv_app_option_string_t value;
    wasi_config_store_error_t err;
    if (!wasi_config_store_get(&key, &value, &err)) config_error(out, &err);
    else if (!value.is_some) respond_text(out, 404, "missing");
    else {
        respond(out, 200, "text/plain", value.val.ptr, value.val.len);
        kv_app_option_string_free(&value);
    }
}

static void route_config_all(outparam_t out) {
    kv_app_list_tuple2_string_string_t all;
    wasi_config_store_error_t err;
    if (!wasi_config_store_get_all(&all, &err)) {
        config_error(out, &err);
        return;
    }
    if (all.len) qsort(all.ptr, all.len, sizeof all.ptr[0], cmp_pair_key);
    buf_t json = {0};
    buf_puts(&json, "{");
    for (size_t i = 0; i < all.len; i++) {
        if (i) buf_puts(&json, ",");
        buf_json_string(&json, all.ptr[i].f0.ptr, all.ptr[i].f0.len);
        buf_puts(&json, ":");
        buf_json_string(&json, all.ptr[i].f1.ptr, all.ptr[i].f1.len);
    }
    buf_puts(&json, "}");
    kv_app_list_tuple2_string_string_free(&all);
    respond_buf(out, 200, "application/json", &json);
}

/* ------------------------------------------------------------------ wasi:keyvalue */

static void wasi_kv_error(outparam_t out, wasi_keyvalue_store_error_t *err) {
    switch (err->tag) {
    case WASI_KEYVALUE_STORE_ERROR_ACCESS_DENIED: respond_text(out, 403, "access-denied"); break;
    case WASI_KEYVALUE_STORE_ERROR_NO_SUCH_STORE: respond_text(out, 404, "no-such-store"); break;
    case WASI_KEYVALUE_STORE_ERROR_OTHER: respond_error(out, &err->val.other); break;
    default: respond_text(out, 500, "error: unknown keyvalue error"); break;
    }
    wasi_keyvalue_store_error_free(err);
}

/* POST /atomic/<label>/incr/<key>?by=N */
static void route_atomic(outparam_t out, char **seg, size_t nseg, const char *query) {
    if (nseg != 4 || strcmp(seg[2], "incr") != 0) {
        respond_text(out, 404, "not-found");
        return;
    }
    int64_t by = 1;
    char *by_text = query_param(query, "by");
    if (by_text) {
        char *end;
        by = strtoll(by_text, &end, 10);
        int bad = *by_text == 0 || *end != 0;
        free(by_text);
        if (bad) {
            respond_text(out, 400, "invalid-by");
            return;
        }
    }
    kv_app_string_t label = str_of(seg[1]), key = str_of(seg[3]);
    wasi_keyvalue_store_own_bucket_t bucket;
    wasi_keyvalue_store_error_t err;
    if (!wasi_keyvalue_store_open(&label, &bucket, &err)) {
        wasi_kv_error(out, &err);
        return;
    }
    int64_t value;
    if (!wasi_keyvalue_atomics_increment(wasi_keyvalue_store_borrow_bucket(bucket), &key, by, &value, &err)) {
        wasi_kv_error(out, &err);
    } else {
        char text[32];
        snprintf(text, sizeof text, "%lld", (long long)value);
        respond_text(out, 200, text);
    }
    wasi_keyvalue_store_bucket_drop_own(bucket);
}

/* Parses "k1=v1&k2=v2" (percent-decoded; empty items skipped) into a WIT list (malloc'd). */
static kv_app_list_tuple2_string_list_u8_t parse_pairs(const uint8_t *body, size_t len) {
    kv_app_list_tuple2_string_list_u8_t list = {NULL, 0};
    char *text = strndup((const char *)body, len);
    size_t n = 1;
    for (const char *c = text; *c; c++)
        if (*c == '&') n++;
    list.ptr = calloc(n, sizeof list.ptr[0]);
    const char *p = text;
    for (;;) {
        size_t item = strcspn(p, "&");
        if (item) {
            size_t klen = strcspn(p, "=&");
            char *k = pct_decode(p, klen);
            char *v = klen < item ? pct_decode(p + klen + 1, item - klen - 1) : strdup("");
            list.ptr[list.len].f0.ptr = (uint8_t *)k;
            list.ptr[list.len].f0.len = strlen(k);
            list.ptr[list.len].f1.ptr = (uint8_t *)v;
            list.ptr[list.len].f1.len = strlen(v);
            list.len++;
        }
        if (p[item] != '&') break;
        p += item + 1;
    }
    free(text);
    return list;
}

/* PUT|GET|DELETE /batch/<label> */
static void route_batch(outparam_t out, wasi_http_types_borrow_incoming_request_t req, const char *method,
                        char **seg, size_t nseg, const char *query) {
    if (nseg != 2) {
        respond_text(out, 404, "not-found");
        return;
    }
    int is_put = strcmp(method, "PUT") == 0, is_get = strcmp(method, "GET") == 0,
        is_delete = strcmp(method, "DELETE") == 0;
    if (!is_put && !is_get && !is_delete) {
        respond_text(out, 405, "method-not-allowed");
        return;
    }
    buf_t body = {0};
    if (is_put && read_request_body(req, &body) != 0) {
        buf_free(&body);
        respond_text(out, 500, "error: reading the request body failed");
        return;
    }
    kv_app_string_t label = str_of(seg[1]);
    wasi_keyvalue_store_own_bucket_t bucket;
    wasi_keyvalue_store_error_t err;
    if (!wasi_keyvalue_store_open(&label, &bucket, &err)) {
        buf_free(&body);
        wasi_kv_error(out, &err);
        return;
    }
    wasi_keyvalue_store_borrow_bucket_t b = wasi_keyvalue_store_borrow_bucket(bucket);
    if (is_put) {
        kv_app_list_tuple2_string_list_u8_t pairs = parse_pairs(body.ptr, body.len);
        if (!wasi_keyvalue_batch_set_many(b, &pairs, &err)) wasi_kv_error(out, &err);
        else respond_text(out, 200, "ok");
        kv_app_list_tuple2_string_list_u8_free(&pairs);
    } else {
        char *keys_text = query_param(query, "keys");
        kv_app_list_string_t keys = split_keys(keys_text);
        free(keys_text);
        if (is_delete) {
            if (!wasi_keyvalue_batch_delete_many(b, &keys, &err)) wasi_kv_error(out, &err);
            else respond_text(out, 200, "ok");
        } else {
            kv_app_list_tuple2_string_option_list_u8_t found;
            if (!wasi_keyvalue_batch_get_many(b, &keys, &found, &err)) {
                wasi_kv_error(out, &err);
            } else {
                buf_t json = {0};
                int first = 1;
                buf_puts(&json, "{");
                for (size_t i = 0; i < found.len; i++) {
                    if (!found.ptr[i].f1.is_some) continue;
                    if (!first) buf_puts(&json, ",");
                    first = 0;
                    buf_json_string(&json, found.ptr[i].f0.ptr, found.ptr[i].f0.len);
                    buf_puts(&json, ":");
                    buf_json_string(&json, found.ptr[i].f1.val.ptr, found.ptr[i].f1.val.len);
                }
                buf_puts(&json, "}");
                kv_app_list_tuple2_string_option_list_u8_free(&found);
                respond_buf(out, 200, "application/json", &json);
            }
        }
        kv_app_list_string_free(&keys);
    }
    buf_free(&body);
    wasi_keyvalue_store_bucket_drop_own(bucket);
}

/* ------------------------------------------------------------------ JSON parser (request bodies) */

/* A parsed JSON value. Strings hold their decoded UTF-8 bytes (may contain NUL); numbers hold
 * their source text (NUL-terminated) and whether it is an integer literal (no fraction or
 * exponent). Objects keep their members in order (keys[i] -> items[i]), duplicates included. */
typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype_t;

typedef struct jval {
    jtype_t type;
    int boolean, is_int;
    buf_t str;           /* J_STR: the bytes; J_NUM: the literal, NUL-terminated */
    struct jval *items;  /* J_ARR, J_OBJ */
    buf_t *keys;         /* J_OBJ */
    size_t count;
} jval_t;

#define JSON_MAX_DEPTH 64

typedef struct {
    const uint8_t *p, *end;
    int depth;
} jparser_t;

static void json_free(jval_t *v) {
    buf_free(&v->str);
    for (size_t i = 0; i < v->count; i++) {
        json_free(&v->items[i]);
        if (v->keys) buf_free(&v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    memset(v, 0, sizeof *v);
}

static void json_ws(jparser_t *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static int json_lit(jparser_t *j, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0) return -1;
    j->p += n;
    return 0;
}

static int json_hex4(jparser_t *j, uint32_t *out) {
    if (j->end - j->p < 4) return -1;
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval((char)j->p[k]);
        if (h < 0) return -1;
        v = v * 16 + (uint32_t)h;
    }
    j->p += 4;
    *out = v;
    return 0;
}

static void buf_utf8(buf_t *b, uint32_t cp) {
    uint8_t u[4];
    size_t n;
    if (cp < 0x80) { u[0] = (uint8_t)cp; n = 1; }
    else if (cp < 0x800) { u[0] = 0xc0 | (cp >> 6); u[1] = 0x80 | (cp & 0x3f); n = 2; }
    else if (cp < 0x10000) { u[0] = 0xe0 | (cp >> 12); u[1] = 0x80 | ((cp >> 6) & 0x3f); u[2] = 0x80 | (cp & 0x3f); n = 3; }
    else { u[0] = 0xf0 | (cp >> 18); u[1] = 0x80 | ((cp >> 12) & 0x3f); u[2] = 0x80 | ((cp >> 6) & 0x3f); u[3] = 0x80 | (cp & 0x3f); n = 4; }
    buf_append(b, u, n);
}

/* Parses a string literal (at '"') into `out` as UTF-8. Rejects invalid UTF-8, raw control
 * characters and lone surrogate escapes. */
static int json_string(jparser_t *j, buf_t *out) {
    if (j->p >= j->end || *j->p != '"') return -1;
    j->p++;
    for (;;) {
        if (j->p >= j->end) return -1;
        uint8_t c = *j->p;
        if (c == '"') {
            j->p++;
            return 0;
        }
        if (c < 0x20) return -1;
        if (c >= 0x80) {
            size_t n = utf8_seq_len(j->p, (size_t)(j->end - j->p), 0);
            if (!n) return -1;
            buf_append(out, j->p, n);
            j->p += n;
            continue;
        }
        j->p++;
        if (c != '\\') {
            buf_append(out, &c, 1);
            continue;
        }
        if (j->p >= j->end) return -1;
        c = *j->p++;
        const char *simple = strchr("\"\\/bfnrt", c);
        if (c && simple) {
            static const char decoded[] = "\"\\/\b\f\n\r\t";
            buf_append(out, &decoded[simple - "\"\\/bfnrt"], 1);
            continue;
        }
        if (c != 'u') return -1;
        uint32_t cp, lo;
        if (json_hex4(j, &cp)) return -1;
        if (cp >= 0xdc00 && cp <= 0xdfff) return -1;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (json_lit(j, "\\u") || json_hex4(j, &lo) || lo < 0xdc00 || lo > 0xdfff) return -1;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        buf_utf8(out, cp);
    }
}

static int json_digits(jparser_t *j) {
    const uint8_t *start = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    return j->p > start ? 0 : -1;
}

static int json_number(jparser_t *j, jval_t *v) {
    const uint8_t *start = j->p;
    v->type = J_NUM;
    v->is_int = 1;
    if (j->p < j->end && *j->p == '-') j->p++;
    if (j->p < j->end && *j->p == '0') j->p++;
    else if (json_digits(j)) return -1;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        v->is_int = 0;
        if (json_digits(j)) return -1;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        v->is_int = 0;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
        if (json_digits(j)) return -1;
    }
    buf_append(&v->str, start, (size_t)(j->p - start));
    buf_append(&v->str, "", 1);
    return 0;
}

/* Parses one value into `v` (zeroed by the caller). On error `v` stays freeable. */
static int json_value(jparser_t *j, jval_t *v) {
    json_ws(j);
    if (j->p >= j->end) return -1;
    switch (*j->p) {
    case 'n': v->type = J_NULL; return json_lit(j, "null");
    case 't': v->type = J_BOOL; v->boolean = 1; return json_lit(j, "true");
    case 'f': v->type = J_BOOL; return json_lit(j, "false");
    case '"': v->type = J_STR; return json_string(j, &v->str);
    case '[':
    case '{': {
        int is_obj = *j->p == '{';
        char close = is_obj ? '}' : ']';
        v->type = is_obj ? J_OBJ : J_ARR;
        if (++j->depth > JSON_MAX_DEPTH) return -1;
        j->p++;
        json_ws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            j->depth--;
            return 0;
        }
        size_t cap = 0;
        for (;;) {
            if (v->count == cap) {
                cap = cap ? cap * 2 : 4;
                jval_t *items = realloc(v->items, cap * sizeof *items);
                if (!items) __builtin_trap();
                v->items = items;
                if (is_obj) {
                    buf_t *keys = realloc(v->keys, cap * sizeof *keys);
                    if (!keys) __builtin_trap();
                    v->keys = keys;
                }
            }
            jval_t *item = &v->items[v->count];
            memset(item, 0, sizeof *item);
            if (is_obj) memset(&v->keys[v->count], 0, sizeof v->keys[0]);
            v->count++;
            if (is_obj) {
                json_ws(j);
                if (json_string(j, &v->keys[v->count - 1])) return -1;
                json_ws(j);
                if (j->p >= j->end || *j->p != ':') return -1;
                j->p++;
            }
            if (json_value(j, item)) return -1;
            json_ws(j);
            if (j->p >= j->end) return -1;
            if (*j->p == ',') {
                j->p++;
                continue;
            }
            if (*j->p != close) return -1;
            j->p++;
            j->depth--;
            return 0;
        }
    }
    default:
        if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) return json_number(j, v);
        return -1;
    }
}

/* Parses a whole document (nothing but whitespace after the value). */
static int json_parse(const uint8_t *text, size_t len, jval_t *v) {
    jparser_t j = {text, text + len, 0};
    memset(v, 0, sizeof *v);
    if (json_value(&j, v)) return -1;
    json_ws(&j);
    return j.p == j.end ? 0 : -1;
}

static int buf_eq(const buf_t *b, const char *s) {
    size_t n = strlen(s);
    return b->len == n && (n == 0 || memcmp(b->ptr, s, n) == 0);
}

/* The value of member `key` of object `v` (the last one if repeated), or NULL. */
static jval_t *json_get(jval_t *v, const char *key) {
    if (v->type != J_OBJ) return NULL;
    for (size_t i = v->count; i-- > 0;)
        if (buf_eq(&v->keys[i], key)) return &v->items[i];
    return NULL;
}

/* ------------------------------------------------------------------ fermyon:spin/sqlite */

/* Decodes one tagged parameter ({"integer": 5}, {"real": 1.5}, {"text": "x"}, {"blob": "<hex>"},
 * {"null": true}; a real may also be "inf", "-inf" or "nan") into `out`, which borrows from `p`.
 * Returns 0 or -1. */
static int sql_param(jval_t *p, fermyon_spin_2_0_0_sqlite_value_t *out) {
    if (p->type != J_OBJ || p->count == 0) return -1;
    buf_t *tag = &p->keys[p->count - 1];
    for (size_t i = 0; i + 1 < p->count; i++) /* exactly one distinct key */
        if (p->keys[i].len != tag->len || memcmp(p->keys[i].ptr, tag->ptr, tag->len) != 0) return -1;
    jval_t *v = &p->items[p->count - 1];
    memset(out, 0, sizeof *out);
    if (buf_eq(tag, "integer") && v->type == J_NUM && v->is_int) {
        errno = 0;
        char *end;
        long long n = strtoll((const char *)v->str.ptr, &end, 10);
        if (errno == ERANGE || *end != 0) return -1;
        out->tag = FERMYON_SPIN_2_0_0_SQLITE_VALUE_INTEGER;
        out->val.integer = n;
        return 0;
    }
    if (buf_eq(tag, "real") && (v->type == J_NUM || v->type == J_STR)) {
        out->tag = FERMYON_SPIN_2_0_0_SQLITE_VALUE_REAL;
        if (v->type == J_NUM) out->val.real = strtod((const char *)v->str.ptr, NULL); /* 1e999 -> inf */
        else if (buf_eq(&v->str, "inf")) out->val.real = INFINITY;
        else if (buf_eq(&v->str, "-inf")) out->val.real = -INFINITY;
        else if (buf_eq(&v->str, "nan")) out->val.real = NAN;
        else return -1;
        return 0;
    }
    if (buf_eq(tag, "text") && v->type == J_STR) {
        out->tag = FERMYON_SPIN_2_0_0_SQLITE_VALUE_TEXT;
        out->val.text.ptr = v->str.ptr;
        out->val.text.len = v->str.len;
        return 0;
    }
    if (buf_eq(tag, "blob") && v->type == J_STR && v->str.len % 2 == 0) {
        /* decode in place: the hex text is not needed afterwards */
        uint8_t *s = v->str.ptr;
        for (size_t i = 0; i < v->str.len; i += 2) {
            int hi = hexval((char)s[i]), lo = hexval((char)s[i + 1]);
            if (hi < 0 || lo < 0) return -1;
            s[i / 2] = (uint8_t)(hi * 16 + lo);
        }
        v->str.len /= 2;
        out->tag = FERMYON_SPIN_2_0_0_SQLITE_VALUE_BLOB;
        out->val.blob.ptr = s;
        out->val.blob.len = v->str.len;
        return 0;
    }
    if (buf_eq(tag, "null") && v->type == J_BOOL && v->boolean) {
        out->tag = FERMYON_SPIN_2_0_0_SQLITE_VALUE_NULL;
        return 0;
    }
    return -1;
}

/* A double as JSON, written like Python's repr(): the fewest significant digits that read back
 * as the same value; positional with at least one decimal when the exponent is in [-4, 16)
 * (100.0, 0.0001), else exponential (1e+16, 1.5e-05). Non-finite: the JSON strings "inf",
 * "-inf", "nan". */
static void buf_json_real(buf_t *b, double r) {
    char text[400];
    if (isnan(r)) { buf_puts(b, "\"nan\""); return; }
    if (isinf(r)) { buf_puts(b, r > 0 ? "\"inf\"" : "\"-inf\""); return; }
    int digits = 1;
    for (; digits < 17; digits++) {
        snprintf(text, sizeof text, "%.*e", digits - 1, r);
        if (strtod(text, NULL) == r) break;
    }
    snprintf(text, sizeof text, "%.*e", digits - 1, r);
    int exp = atoi(strchr(text, 'e') + 1);
    if (exp >= -4 && exp < 16) {
        int decimals = digits - 1 - exp;
        snprintf(text, sizeof text, "%.*f", decimals > 0 ? decimals : 0, r);
        if (decimals <= 0) strcat(text, ".0");
    }
    buf_puts(b, text);
}

static void buf_json_sql_value(buf_t *b, const fermyon_spin_2_0_0_sqlite_value_t *v) {
    static const char hex[] = "0123456789abcdef";
    char text[48];
    switch (v->tag) {
    case FERMYON_SPIN_2_0_0_SQLITE_VALUE_INTEGER:
        snprintf(text, sizeof text, "{\"integer\":%lld}", (long long)v->val.integer);
        buf_puts(b, text);
        break;
    case FERMYON_SPIN_2_0_0_SQLITE_VALUE_REAL:
        buf_puts(b, "{\"real\":");
        buf_json_real(b, v->val.real);
        buf_puts(b, "}");
        break;
    case FERMYON_SPIN_2_0_0_SQLITE_VALUE_TEXT:
        buf_puts(b, "{\"text\":");
        buf_json_string(b, v->val.text.ptr, v->val.text.len);
        buf_puts(b, "}");
        break;
    case FERMYON_SPIN_2_0_0_SQLITE_VALUE_BLOB:
        buf_puts(b, "{\"blob\":\"");
        for (size_t i = 0; i < v->val.blob.len; i++) {
            char h[2] = {hex[v->val.blob.ptr[i] >> 4], hex[v->val.blob.ptr[i] & 15]};
            buf_append(b, h, 2);
        }
        buf_puts(b, "\"}");
        break;
    default:
        buf_puts(b, "{\"null\":true}");
        break;
    }
}

/* Frees a query result. wit-bindgen 0.63's generated free functions skip the bytes of a
 * `blob(list<u8>)` case, so those are freed here first (and the case emptied, so that a
 * generator that does free them would not free twice). */
static void sql_result_free(fermyon_spin_2_0_0_sqlite_query_result_t *result) {
    for (size_t i = 0; i < result->rows.len; i++) {
        fermyon_spin_2_0_0_sqlite_list_value_t *values = &result->rows.ptr[i].values;
        for (size_t k = 0; k < values->len; k++) {
            if (values->ptr[k].tag == FERMYON_SPIN_2_0_0_SQLITE_VALUE_BLOB) {
                kv_app_list_u8_free(&values->ptr[k].val.blob);
                values->ptr[k].tag = FERMYON_SPIN_2_0_0_SQLITE_VALUE_NULL;
            }
        }
    }
    fermyon_spin_2_0_0_sqlite_query_result_free(result);
}

static void sql_error(outparam_t out, fermyon_spin_2_0_0_sqlite_error_t *err) {
    buf_t b = {0};
    switch (err->tag) {
    case FERMYON_SPIN_2_0_0_SQLITE_ERROR_ACCESS_DENIED: respond_text(out, 403, "access-denied"); break;
    case FERMYON_SPIN_2_0_0_SQLITE_ERROR_NO_SUCH_DATABASE: respond_text(out, 404, "no-such-database"); break;
    case FERMYON_SPIN_2_0_0_SQLITE_ERROR_INVALID_CONNECTION: respond_text(out, 400, "error: invalid-connection"); break;
    case FERMYON_SPIN_2_0_0_SQLITE_ERROR_DATABASE_FULL: respond_text(out, 400, "error: database-full"); break;
    case FERMYON_SPIN_2_0_0_SQLITE_ERROR_IO:
        buf_puts(&b, "error: io: ");
        buf_append(&b, err->val.io.ptr, err->val.io.len);
        respond_buf(out, 400, "text/plain", &b);
        break;
    default: respond_text(out, 400, "error: unknown sqlite error"); break;
    }
    fermyon_spin_2_0_0_sqlite_error_free(err);
}

/* POST /sql/<label> with {"statement": "...", "params": [...]} */
static void route_sql(outparam_t out, wasi_http_types_borrow_incoming_request_t req, char **seg, size_t nseg) {
    if (nseg != 2) {
        respond_text(out, 404, "not-found");
        return;
    }
    buf_t body = {0};
    if (read_request_body(req, &body) != 0) {
        buf_free(&body);
        respond_text(out, 500, "error: reading the request body failed");
        return;
    }
    jval_t doc;
    int ok = json_parse(body.ptr ? body.ptr : (const uint8_t *)"", body.len, &doc) == 0;
    buf_free(&body);
    jval_t *statement = ok ? json_get(&doc, "statement") : NULL;
    jval_t *params = ok ? json_get(&doc, "params") : NULL;
    ok = ok && statement && statement->type == J_STR && (!params || params->type == J_ARR);
    fermyon_spin_2_0_0_sqlite_list_value_t values = {NULL, 0};
    if (ok && params && params->count) {
        values.ptr = calloc(params->count, sizeof values.ptr[0]);
        if (!values.ptr) __builtin_trap();
        for (; ok && values.len < params->count; values.len++)
            ok = sql_param(&params->items[values.len], &values.ptr[values.len]) == 0;
    }
    if (!ok) {
        free(values.ptr);
        json_free(&doc);
        respond_text(out, 400, "bad-request");
        return;
    }

    kv_app_string_t label = str_of(seg[1]);
    kv_app_string_t stmt = {statement->str.ptr, statement->str.len};
    fermyon_spin_2_0_0_sqlite_own_connection_t conn;
    fermyon_spin_2_0_0_sqlite_query_result_t result;
    fermyon_spin_2_0_0_sqlite_error_t err;
    if (!fermyon_spin_2_0_0_sqlite_static_connection_open(&label, &conn, &err)) {
        sql_error(out, &err);
    } else {
        if (!fermyon_spin_2_0_0_sqlite_method_connection_execute(fermyon_spin_2_0_0_sqlite_borrow_connection(conn), &stmt,
                                                            &values, &result, &err)) {
            sql_error(out, &err);
        } else {
            buf_t json = {0};
            buf_puts(&json, "{\"columns\":[");
            for (size_t i = 0; i < result.columns.len; i++) {
                if (i) buf_puts(&json, ",");
                buf_json_string(&json, result.columns.ptr[i].ptr, result.columns.ptr[i].len);
            }
            buf_puts(&json, "],\"rows\":[");
            for (size_t i = 0; i < result.rows.len; i++) {
                fermyon_spin_2_0_0_sqlite_list_value_t *row = &result.rows.ptr[i].values;
                buf_puts(&json, i ? ",[" : "[");
                for (size_t k = 0; k < row->len; k++) {
                    if (k) buf_puts(&json, ",");
                    buf_json_sql_value(&json, &row->ptr[k]);
                }
                buf_puts(&json, "]");
            }
            buf_puts(&json, "]}");
            sql_result_free(&result);
            respond_buf(out, 200, "application/json", &json);
        }
        fermyon_spin_2_0_0_sqlite_connection_drop_own(conn);
    }
    free(values.ptr); /* the values borrow from `doc` */
    json_free(&doc);
}

/* ------------------------------------------------------------------ fermyon:spin/redis */

/* invalid-address -> 400, too-many-connections -> 503, type-error -> 400, other(msg) -> 500;
 * body "error: <case>" (+ ": <message>"). */
static void redis_error(outparam_t out, fermyon_spin_2_0_0_redis_error_t *err) {
    buf_t b = {0};
    switch (err->tag) {
    case FERMYON_SPIN_2_0_0_REDIS_ERROR_INVALID_ADDRESS: respond_text(out, 400, "error: invalid-address"); break;
    case FERMYON_SPIN_2_0_0_REDIS_ERROR_TOO_MANY_CONNECTIONS: respond_text(out, 503, "error: too-many-connections"); break;
    case FERMYON_SPIN_2_0_0_REDIS_ERROR_TYPE_ERROR: respond_text(out, 400, "error: type-error"); break;
    case FERMYON_SPIN_2_0_0_REDIS_ERROR_OTHER:
        buf_puts(&b, "error: other: ");
        buf_append(&b, err->val.other.ptr, err->val.other.len);
        respond_buf(out, 500, "text/plain", &b);
        break;
    default: respond_text(out, 500, "error: unknown redis error"); break;
    }
    fermyon_spin_2_0_0_redis_error_free(err);
}

static int utf8_valid(const uint8_t *s, size_t len) {
    for (size_t i = 0; i < len;) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_seq_len(s, len, i);
        if (!n) return 0;
        i += n;
    }
    return 1;
}

/* One `execute` result as JSON: {"nil":true}, {"status":"OK"}, {"int64":5}, {"binary":"<text>"}
 * (the bytes as a string when they are valid UTF-8, else lowercase hex). */
static void buf_json_redis_result(buf_t *b, const fermyon_spin_2_0_0_redis_redis_result_t *r) {
    static const char hex[] = "0123456789abcdef";
    char text[48];
    switch (r->tag) {
    case FERMYON_SPIN_2_0_0_REDIS_REDIS_RESULT_STATUS:
        buf_puts(b, "{\"status\":");
        buf_json_string(b, r->val.status.ptr, r->val.status.len);
        buf_puts(b, "}");
        break;
    case FERMYON_SPIN_2_0_0_REDIS_REDIS_RESULT_INT64:
        snprintf(text, sizeof text, "{\"int64\":%lld}", (long long)r->val.int64);
        buf_puts(b, text);
        break;
    case FERMYON_SPIN_2_0_0_REDIS_REDIS_RESULT_BINARY:
        buf_puts(b, "{\"binary\":");
        if (utf8_valid(r->val.binary.ptr, r->val.binary.len)) {
            buf_json_string(b, r->val.binary.ptr, r->val.binary.len);
        } else {
            buf_puts(b, "\"");
            for (size_t i = 0; i < r->val.binary.len; i++) {
                char h[2] = {hex[r->val.binary.ptr[i] >> 4], hex[r->val.binary.ptr[i] & 15]};
                buf_append(b, h, 2);
            }
            buf_puts(b, "\"");
        }
        buf_puts(b, "}");
        break;
    default:
        buf_puts(b, "{\"nil\":true}");
        break;
    }
}

/* Parses the `execute` body (a non-empty JSON array of strings: the command, then its
 * arguments) into `args` (binary parameters borrowing from `doc`). Returns 0 or -1. */
static int redis_command(const buf_t *body, jval_t *doc, fermyon_spin_2_0_0_redis_list_redis_parameter_t *args) {
    args->ptr = NULL;
    args->len = 0;
    if (json_parse(body->ptr ? body->ptr : (const uint8_t *)"", body->len, doc) != 0) return -1;
    if (doc->type != J_ARR || doc->count == 0) return -1;
    for (size_t i = 0; i < doc->count; i++)
        if (doc->items[i].type != J_STR) return -1;
    if (doc->count > 1) {
        args->ptr = calloc(doc->count - 1, sizeof args->ptr[0]);
        if (!args->ptr) __builtin_trap();
        for (size_t i = 1; i < doc->count; i++, args->len++) {
            args->ptr[args->len].tag = FERMYON_SPIN_2_0_0_REDIS_REDIS_PARAMETER_BINARY;
            args->ptr[args->len].val.binary.ptr = doc->items[i].str.ptr;
            args->ptr[args->len].val.binary.len = doc->items[i].str.len;
        }
    }
    return 0;
}

/* /redis/{publish,set,get,incr,del,sadd,smembers,srem}/<name>?addr=<url>, /redis/execute?addr=<url> */
static void route_redis(outparam_t out, wasi_http_types_borrow_incoming_request_t req, char **seg, size_t nseg,
                        const char *query) {
    const char *op = nseg >= 2 ? seg[1] : "";
    static const char *const keyed[] = {"publish", "set", "get", "incr", "del", "sadd", "smembers", "srem"};
    int with_key = 0;
    for (size_t i = 0; i < sizeof keyed / sizeof keyed[0]; i++)
        if (strcmp(op, keyed[i]) == 0) with_key = 1;
    if (!((with_key && nseg == 3) || (strcmp(op, "execute") == 0 && nseg == 2))) {
        respond_text(out, 404, "not-found");
        return;
    }
    char *addr = query_param(query, "addr");
    if (!addr) {
        respond_text(out, 400, "bad-request");
        return;
    }
    buf_t body = {0};
    int needs_body = strcmp(op, "publish") == 0 || strcmp(op, "set") == 0 || strcmp(op, "sadd") == 0 ||
                     strcmp(op, "srem") == 0 || strcmp(op, "execute") == 0;
    if (needs_body && read_request_body(req, &body) != 0) {
        buf_free(&body);
        free(addr);
        respond_text(out, 500, "error: reading the request body failed");
        return;
    }
    jval_t doc;
    memset(&doc, 0, sizeof doc);
    fermyon_spin_2_0_0_redis_list_redis_parameter_t args = {NULL, 0};
    if (strcmp(op, "execute") == 0 && redis_command(&body, &doc, &args) != 0) {
        free(args.ptr);
        json_free(&doc);
        buf_free(&body);
        free(addr);
        respond_text(out, 400, "bad-request");
        return;
    }

    kv_app_string_t address = str_of(addr);
    kv_app_string_t key = str_of(with_key ? seg[2] : "");
    fermyon_spin_2_0_0_redis_own_connection_t conn;
    fermyon_spin_2_0_0_redis_error_t err;
    if (!fermyon_spin_2_0_0_redis_static_connection_open(&address, &conn, &err)) {
        redis_error(out, &err);
        goto done;
    }
    fermyon_spin_2_0_0_redis_borrow_connection_t c = fermyon_spin_2_0_0_redis_borrow_connection(conn);
    fermyon_spin_2_0_0_redis_payload_t payload = {body.ptr, body.len};
    char text[32];
    if (strcmp(op, "publish") == 0 || strcmp(op, "set") == 0) {
        bool ok = op[0] == 'p' ? fermyon_spin_2_0_0_redis_method_connection_publish(c, &key, &payload, &err)
                               : fermyon_spin_2_0_0_redis_method_connection_set(c, &key, &payload, &err);
        if (!ok) redis_error(out, &err);
        else respond_text(out, 200, "ok");
    } else if (strcmp(op, "get") == 0) {
        fermyon_spin_2_0_0_redis_option_payload_t value;
        if (!fermyon_spin_2_0_0_redis_method_connection_get(c, &key, &value, &err)) redis_error(out, &err);
        else if (!value.is_some) respond_text(out, 404, "missing");
        else {
            respond(out, 200, "text/plain", value.val.ptr, value.val.len);
            fermyon_spin_2_0_0_redis_option_payload_free(&value);
        }
    } else if (strcmp(op, "incr") == 0) {
        int64_t value;
        if (!fermyon_spin_2_0_0_redis_method_connection_incr(c, &key, &value, &err)) {
            redis_error(out, &err);
        } else {
            snprintf(text, sizeof text, "%lld", (long long)value);
            respond_text(out, 200, text);
        }
    } else if (strcmp(op, "del") == 0 || strcmp(op, "sadd") == 0 || strcmp(op, "srem") == 0) {
        uint32_t n;
        bool ok;
        if (op[0] == 'd') {
            kv_app_list_string_t keys = {&key, 1};
            ok = fermyon_spin_2_0_0_redis_method_connection_del(c, &keys, &n, &err);
        } else {
            char *text_body = strndup(body.ptr ? (const char *)body.ptr : "", body.len);
            kv_app_list_string_t values = split_keys(text_body);
            free(text_body);
            ok = op[1] == 'a' ? fermyon_spin_2_0_0_redis_method_connection_sadd(c, &key, &values, &n, &err)
                              : fermyon_spin_2_0_0_redis_method_connection_srem(c, &key, &values, &n, &err);
            kv_app_list_string_free(&values);
        }
        if (!ok) {
            redis_error(out, &err);
        } else {
            snprintf(text, sizeof text, "%lu", (unsigned long)n);
            respond_text(out, 200, text);
        }
    } else if (strcmp(op, "smembers") == 0) {
        kv_app_list_string_t members;
        if (!fermyon_spin_2_0_0_redis_method_connection_smembers(c, &key, &members, &err)) {
            redis_error(out, &err);
        } else {
            if (members.len) qsort(members.ptr, members.len, sizeof(kv_app_string_t), cmp_string);
            buf_t json = {0};
            buf_puts(&json, "[");
            for (size_t i = 0; i < members.len; i++) {
                if (i) buf_puts(&json, ",");
                buf_json_string(&json, members.ptr[i].ptr, members.ptr[i].len);
            }
            buf_puts(&json, "]");
            kv_app_list_string_free(&members);
            respond_buf(out, 200, "application/json", &json);
        }
    } else { /* execute */
        kv_app_string_t command = {doc.items[0].str.ptr, doc.items[0].str.len};
        fermyon_spin_2_0_0_redis_list_redis_result_t results;
        if (!fermyon_spin_2_0_0_redis_method_connection_execute(c, &command, &args, &results, &err)) {
            redis_error(out, &err);
        } else {
            buf_t json = {0};
            buf_puts(&json, "[");
            for (size_t i = 0; i < results.len; i++) {
                if (i) buf_puts(&json, ",");
                buf_json_redis_result(&json, &results.ptr[i]);
            }
            buf_puts(&json, "]");
            fermyon_spin_2_0_0_redis_list_redis_result_free(&results);
            respond_buf(out, 200, "application/json", &json);
        }
    }
    fermyon_spin_2_0_0_redis_connection_drop_own(conn);
done:
    free(args.ptr); /* the parameters borrow from `doc` */
    json_free(&doc);
    buf_free(&body);
    free(addr);
}

/* ------------------------------------------------------------------ fermyon:spin/{postgres,mysql} */

/* The case names of rdbms-types `parameter-value` / `db-value` (by tag; the two variants share
 * tags 0..13, db-value adds `unsupported` as 14) and of `db-data-type` (0..13). */
static const char *const rdbms_value_names[] = {
    "boolean", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "floating32", "floating64", "str", "binary", "db-null", "unsupported"};
static const char *const rdbms_type_names[] = {
    "boolean", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "floating32", "floating64", "str", "binary", "other"};

/* A JSON integer literal as a signed value in [min, max]. Returns 0 or -1. */
static int json_int_in(const jval_t *v, long long min, long long max, long long *out) {
    if (v->type != J_NUM || !v->is_int) return -1;
    errno = 0;
    char *end;
    long long n = strtoll((const char *)v->str.ptr, &end, 10);
    if (errno == ERANGE || *end != 0 || n < min || n > max) return -1;
    *out = n;
    return 0;
}

/* A JSON integer literal as an unsigned value in [0, max] ("-0" counts as 0). Returns 0 or -1. */
static int json_uint_in(const jval_t *v, unsigned long long max, unsigned long long *out) {
    if (v->type != J_NUM || !v->is_int) return -1;
    const char *s = (const char *)v->str.ptr;
    if (s[0] == '-') {
        if (strcmp(s, "-0") != 0) return -1;
        *out = 0;
        return 0;
    }
    errno = 0;
    char *end;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno == ERANGE || *end != 0 || n > max) return -1;
    *out = n;
    return 0;
}

/* A JSON number, or the string "inf", "-inf" or "nan", as a double. Returns 0 or -1. */
static int json_real(const jval_t *v, double *out) {
    if (v->type == J_NUM) *out = strtod((const char *)v->str.ptr, NULL); /* 1e999 -> inf */
    else if (v->type == J_STR && buf_eq(&v->str, "inf")) *out = INFINITY;
    else if (v->type == J_STR && buf_eq(&v->str, "-inf")) *out = -INFINITY;
    else if (v->type == J_STR && buf_eq(&v->str, "nan")) *out = NAN;
    else return -1;
    return 0;
}

/* Decodes one tagged parameter (a one-member object named by a `parameter-value` case:
 * {"int32": 5}, {"floating64": 1.5}, {"str": "x"}, {"binary": "<hex>"}, {"boolean": true},
 * {"db-null": true}, ...) into `out`, which borrows from `p`. Returns 0 or -1. */
static int rdbms_param(jval_t *p, fermyon_spin_2_0_0_rdbms_types_parameter_value_t *out) {
    if (p->type != J_OBJ || p->count == 0) return -1;
    buf_t *tag = &p->keys[p->count - 1];
    for (size_t i = 0; i + 1 < p->count; i++) /* exactly one distinct key */
        if (p->keys[i].len != tag->len || memcmp(p->keys[i].ptr, tag->ptr, tag->len) != 0) return -1;
    jval_t *v = &p->items[p->count - 1];
    int t = -1;
    for (int i = 0; i <= FERMYON_SPIN_2_0_0_RDBMS_TYPES_PARAMETER_VALUE_DB_NULL; i++)
        if (buf_eq(tag, rdbms_value_names[i])) t = i;
    memset(out, 0, sizeof *out);
    out->tag = (uint8_t)t;
    long long s;
    unsigned long long u;
    double d;
    switch (t) {
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_PARAMETER_VALUE_BOOLEAN:
        if (v->type != J_BOOL) return -1;
        out->val.boolean = v->boolean;
        return 0;
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_PARAMETER_VALUE_INT8:
        if (json_int_in(v, INT8_MIN, INT8_MAX, &s)) return -1;
        out->val.int8 = (int8_t)s;
        return 0;
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_PARAMETER_VALUE_INT16:
        if (json_int_in(v, INT16_MIN, INT16_MAX, &s)) return -1;
        out->val.int16 = (int16_t)s;
        return 0;
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_PARAMETER_VALUE_INT32:
        if (json_int_in(v, INT32_MIN, INT32_MAX, &s)) return -1;
        out->val.int32 = (int32_t)s;
        return 0;
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_PARAMETER_VALUE_INT64:
        if (json_int_in(v, INT64_MIN, INT64_MAX, &s)) return -1;
        out->val.int64 = (int64_t)s;
        return 0;
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_PARAMETER_VALUE_UINT8:
        if (json_uint_in(v, UINT8_MAX, &u)) return -1;
        out->val.uint8 = (uint8_t)u;
        return 0;
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_PARAMETER_VALUE_UINT16:
        if (json_uint_in(v, UINT16_MAX, &u)) return -1;
        out->val.uint16 = (uint16_t)u;
        return 0;
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_PARAMETER_VALUE_UINT32:
        if (json_uint_in(v, UINT32_MAX, &u)) return -1;
        out->val.uint32 = (uint32_t)u;
        return 0;
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_PARAMETER_VALUE_UINT64:
        if (json_uint_in(v, UINT64_MAX, &u)) return -1;
        out->val.uint64 = (uint64_t)u;
        return 0;
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_PARAMETER_VALUE_FLOATING32:
        if (json_real(v, &d)) return -1;
        out->val.floating32 = (float)d; /* wasm f32.demote_f64: out of range -> inf */
        return 0;
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_PARAMETER_VALUE_FLOATING64:
        if (json_real(v, &d)) return -1;
        out->val.floating64 = d;
        return 0;
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_PARAMETER_VALUE_STR:
        if (v->type != J_STR) return -1;
        out->val.str.ptr = v->str.ptr;
        out->val.str.len = v->str.len;
        return 0;
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_PARAMETER_VALUE_BINARY: {
        if (v->type != J_STR || v->str.len % 2 != 0) return -1;
        /* decode in place: the hex text is not needed afterwards */
        uint8_t *h = v->str.ptr;
        for (size_t i = 0; i < v->str.len; i += 2) {
            int hi = hexval((char)h[i]), lo = hexval((char)h[i + 1]);
            if (hi < 0 || lo < 0) return -1;
            h[i / 2] = (uint8_t)(hi * 16 + lo);
        }
        v->str.len /= 2;
        out->val.binary.ptr = h;
        out->val.binary.len = v->str.len;
        return 0;
    }
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_PARAMETER_VALUE_DB_NULL:
        return v->type == J_BOOL && v->boolean ? 0 : -1;
    default:
        return -1;
    }
}

/* One `db-value` as tagged JSON, named by its case: {"int32":5}, {"floating64":1.5} (written
 * like Python's repr, non-finite as "inf"/"-inf"/"nan"), {"str":"x"}, {"binary":"<lowercase
 * hex>"}, {"boolean":true}, {"db-null":true}, {"unsupported":true}. */
static void buf_json_db_value(buf_t *b, const fermyon_spin_2_0_0_rdbms_types_db_value_t *v) {
    static const char hex[] = "0123456789abcdef";
    char text[48];
    if (v->tag > FERMYON_SPIN_2_0_0_RDBMS_TYPES_DB_VALUE_UNSUPPORTED) {
        buf_puts(b, "{\"unsupported\":true}");
        return;
    }
    snprintf(text, sizeof text, "{\"%s\":", rdbms_value_names[v->tag]);
    buf_puts(b, text);
    switch (v->tag) {
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_DB_VALUE_BOOLEAN: buf_puts(b, v->val.boolean ? "true" : "false"); break;
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_DB_VALUE_INT8: snprintf(text, sizeof text, "%d", v->val.int8); break;
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_DB_VALUE_INT16: snprintf(text, sizeof text, "%d", v->val.int16); break;
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_DB_VALUE_INT32: snprintf(text, sizeof text, "%ld", (long)v->val.int32); break;
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_DB_VALUE_INT64: snprintf(text, sizeof text, "%lld", (long long)v->val.int64); break;
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_DB_VALUE_UINT8: snprintf(text, sizeof text, "%u", v->val.uint8); break;
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_DB_VALUE_UINT16: snprintf(text, sizeof text, "%u", v->val.uint16); break;
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_DB_VALUE_UINT32: snprintf(text, sizeof text, "%lu", (unsigned long)v->val.uint32); break;
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_DB_VALUE_UINT64:
        snprintf(text, sizeof text, "%llu", (unsigned long long)v->val.uint64);
        break;
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_DB_VALUE_FLOATING32: buf_json_real(b, (double)v->val.floating32); break;
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_DB_VALUE_FLOATING64: buf_json_real(b, v->val.floating64); break;
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_DB_VALUE_STR: buf_json_string(b, v->val.str.ptr, v->val.str.len); break;
    case FERMYON_SPIN_2_0_0_RDBMS_TYPES_DB_VALUE_BINARY:
        buf_puts(b, "\"");
        for (size_t i = 0; i < v->val.binary.len; i++) {
            char h[2] = {hex[v->val.binary.ptr[i] >> 4], hex[v->val.binary.ptr[i] & 15]};
            buf_append(b, h, 2);
        }
        buf_puts(b, "\"");
        break;
    default: buf_puts(b, "true"); break; /* db-null, unsupported */
    }
    if (v->tag >= FERMYON_SPIN_2_0_0_RDBMS_TYPES_DB_VALUE_INT8 && v->tag <= FERMYON_SPIN_2_0_0_RDBMS_TYPES_DB_VALUE_UINT64)
        buf_puts(b, text);
    buf_puts(b, "}");
}

/* A row set as {"columns":[{"name":"...","type":"<db-data-type case>"},...],"rows":[[...],...]}. */
static void buf_json_row_set(buf_t *b, const fermyon_spin_2_0_0_rdbms_types_row_set_t *rs) {
    buf_puts(b, "{\"columns\":[");
    for (size_t i = 0; i < rs->columns.len; i++) {
        const fermyon_spin_2_0_0_rdbms_types_column_t *c = &rs->columns.ptr[i];
        buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        buf_json_string(b, c->name.ptr, c->name.len);
        buf_puts(b, ",\"type\":\"");
        buf_puts(b, c->data_type <= FERMYON_SPIN_2_0_0_RDBMS_TYPES_DB_DATA_TYPE_OTHER ? rdbms_type_names[c->data_type]
                                                                                 : "other");
        buf_puts(b, "\"}");
    }
    buf_puts(b, "],\"rows\":[");
    for (size_t i = 0; i < rs->rows.len; i++) {
        const fermyon_spin_2_0_0_rdbms_types_row_t *row = &rs->rows.ptr[i];
        buf_puts(b, i ? ",[" : "[");
        for (size_t k = 0; k < row->len; k++) {
            if (k) buf_puts(b, ",");
            buf_json_db_value(b, &row->ptr[k]);
        }
        buf_puts(b, "]");
    }
    buf_puts(b, "]}");
}

/* Frees a row set. As with sqlite, wit-bindgen 0.63's generated free functions skip the bytes of
 * `binary(list<u8>)` values, so those are freed here first (and the case emptied). */
static void rdbms_row_set_free(fermyon_spin_2_0_0_rdbms_types_row_set_t *rs) {
    for (size_t i = 0; i < rs->rows.len; i++) {
        fermyon_spin_2_0_0_rdbms_types_row_t *row = &rs->rows.ptr[i];
        for (size_t k = 0; k < row->len; k++) {
            if (row->ptr[k].tag == FERMYON_SPIN_2_0_0_RDBMS_TYPES_DB_VALUE_BINARY) {
                kv_app_list_u8_free(&row->ptr[k].val.binary);
                row->ptr[k].tag = FERMYON_SPIN_2_0_0_RDBMS_TYPES_DB_VALUE_DB_NULL;
            }
        }
    }
    fermyon_spin_2_0_0_rdbms_types_row_set_free(rs);
}

/* Every rdbms-types error -> 400 "error: <case>: <message>". */
static void rdbms_error(outparam_t out, fermyon_spin_2_0_0_rdbms_types_error_t *err) {
    static const char *const names[] = {"connection-failed", "bad-parameter", "query-failed",
                                        "value-conversion-failed", "other"};
    buf_t b = {0};
    buf_puts(&b, "error: ");
    if (err->tag <= FERMYON_SPIN_2_0_0_RDBMS_TYPES_ERROR_OTHER) {
        buf_puts(&b, names[err->tag]);
        buf_puts(&b, ": ");
        /* every case carries a string, at the same place in the union */
        buf_append(&b, err->val.other.ptr, err->val.other.len);
    } else {
        buf_puts(&b, "unknown rdbms error");
    }
    respond_buf(out, 400, "text/plain", &b);
    fermyon_spin_2_0_0_rdbms_types_error_free(err);
}

/* POST /pg/{query,execute}?addr=<url>, POST /mysql/{query,execute}?addr=<url>, with the body
 * {"statement": "...", "params": [...]}. */
static void route_rdbms(outparam_t out, wasi_http_types_borrow_incoming_request_t req, char **seg, size_t nseg,
                        const char *query) {
    int pg = strcmp(seg[0], "pg") == 0;
    int is_query = nseg == 2 && strcmp(seg[1], "query") == 0;
    if (nseg != 2 || (!is_query && strcmp(seg[1], "execute") != 0)) {
        respond_text(out, 404, "not-found");
        return;
    }
    char *addr = query_param(query, "addr");
    if (!addr) {
        respond_text(out, 400, "bad-request");
        return;
    }
    buf_t body = {0};
    if (read_request_body(req, &body) != 0) {
        buf_free(&body);
        free(addr);
        respond_text(out, 500, "error: reading the request body failed");
        return;
    }
    jval_t doc;
    int ok = json_parse(body.ptr ? body.ptr : (const uint8_t *)"", body.len, &doc) == 0;
    buf_free(&body);
    jval_t *statement = ok ? json_get(&doc, "statement") : NULL;
    jval_t *params = ok ? json_get(&doc, "params") : NULL;
    ok = ok && statement && statement->type == J_STR && (!params || params->type == J_ARR);
    fermyon_spin_2_0_0_rdbms_types_parameter_value_t *values = NULL;
    size_t nvalues = 0;
    if (ok && params && params->count) {
        values = calloc(params->count, sizeof values[0]);
        if (!values) __builtin_trap();
        for (; ok && nvalues < params->count; nvalues++)
            ok = rdbms_param(&params->items[nvalues], &values[nvalues]) == 0;
    }
    if (!ok) {
        free(values);
        json_free(&doc);
        free(addr);
        respond_text(out, 400, "bad-request");
        return;
    }

    kv_app_string_t address = str_of(addr);
    kv_app_string_t stmt = {statement->str.ptr, statement->str.len};
    fermyon_spin_2_0_0_rdbms_types_error_t err;
    fermyon_spin_2_0_0_rdbms_types_row_set_t rows;
    char text[32];
    if (pg) {
        fermyon_spin_2_0_0_postgres_list_parameter_value_t list = {values, nvalues};
        fermyon_spin_2_0_0_postgres_own_connection_t conn;
        if (!fermyon_spin_2_0_0_postgres_static_connection_open(&address, &conn, &err)) {
            rdbms_error(out, &err);
        } else {
            fermyon_spin_2_0_0_postgres_borrow_connection_t c = fermyon_spin_2_0_0_postgres_borrow_connection(conn);
            uint64_t affected;
            if (is_query ? !fermyon_spin_2_0_0_postgres_method_connection_query(c, &stmt, &list, &rows, &err)
                         : !fermyon_spin_2_0_0_postgres_method_connection_execute(c, &stmt, &list, &affected, &err)) {
                rdbms_error(out, &err);
            } else if (is_query) {
                buf_t json = {0};
                buf_json_row_set(&json, &rows);
                rdbms_row_set_free(&rows);
                respond_buf(out, 200, "application/json", &json);
            } else {
                snprintf(text, sizeof text, "%llu", (unsigned long long)affected);
                respond_text(out, 200, text);
            }
            fermyon_spin_2_0_0_postgres_connection_drop_own(conn);
        }
    } else {
        fermyon_spin_2_0_0_mysql_list_parameter_value_t list = {values, nvalues};
        fermyon_spin_2_0_0_mysql_own_connection_t conn;
        if (!fermyon_spin_2_0_0_mysql_static_connection_open(&address, &conn, &err)) {
            rdbms_error(out, &err);
        } else {
            fermyon_spin_2_0_0_mysql_borrow_connection_t c = fermyon_spin_2_0_0_mysql_borrow_connection(conn);
            if (is_query ? !fermyon_spin_2_0_0_mysql_method_connection_query(c, &stmt, &list, &rows, &err)
                         : !fermyon_spin_2_0_0_mysql_method_connection_execute(c, &stmt, &list, &err)) {
                rdbms_error(out, &err);
            } else if (is_query) {
                buf_t json = {0};
                buf_json_row_set(&json, &rows);
                rdbms_row_set_free(&rows);
                respond_buf(out, 200, "application/json", &json);
            } else {
                respond_text(out, 200, "ok");
            }
            fermyon_spin_2_0_0_mysql_connection_drop_own(conn);
        }
    }
    free(values); /* the values borrow from `doc` */
    json_free(&doc);
    free(addr);
}

/* ------------------------------------------------------------------ fermyon:spin/mqtt */

/* Every mqtt error -> 400 "error: <case>" (+ ": <message>" for connection-failed and other). */
static void mqtt_error(outparam_t out, fermyon_spin_2_0_0_mqtt_error_t *err) {
    buf_t b = {0};
    switch (err->tag) {
    case FERMYON_SPIN_2_0_0_MQTT_ERROR_INVALID_ADDRESS: respond_text(out, 400, "error: invalid-address"); break;
    case FERMYON_SPIN_2_0_0_MQTT_ERROR_TOO_MANY_CONNECTIONS: respond_text(out, 400, "error: too-many-connections"); break;
    case FERMYON_SPIN_2_0_0_MQTT_ERROR_CONNECTION_FAILED:
    case FERMYON_SPIN_2_0_0_MQTT_ERROR_OTHER:
        buf_puts(&b, err->tag == FERMYON_SPIN_2_0_0_MQTT_ERROR_OTHER ? "error: other: " : "error: connection-failed: ");
        /* both cases carry a string, at the same place in the union */
        buf_append(&b, err->val.other.ptr, err->val.other.len);
        respond_buf(out, 400, "text/plain", &b);
        break;
    default: respond_text(out, 400, "error: unknown mqtt error"); break;
    }
    fermyon_spin_2_0_0_mqtt_error_free(err);
}

/* POST /mqtt/publish/<topic>?addr=<url>&qos=<0|1|2>, the body is the payload. */
static void route_mqtt(outparam_t out, wasi_http_types_borrow_incoming_request_t req, char **seg, size_t nseg,
                       const char *query) {
    if (nseg != 3 || strcmp(seg[1], "publish") != 0) {
        respond_text(out, 404, "not-found");
        return;
    }
    char *addr = query_param(query, "addr");
    char *qos_text = query_param(query, "qos");
    int qos = qos_text && qos_text[0] >= '0' && qos_text[0] <= '2' && qos_text[1] == 0 ? qos_text[0] - '0' : -1;
    free(qos_text);
    if (!addr || qos < 0) {
        free(addr);
        respond_text(out, 400, "bad-request");
        return;
    }
    buf_t body = {0};
    if (read_request_body(req, &body) != 0) {
        buf_free(&body);
        free(addr);
        respond_text(out, 500, "error: reading the request body failed");
        return;
    }
    kv_app_string_t address = str_of(addr), empty = str_of(""), topic = str_of(seg[2]);
    fermyon_spin_2_0_0_mqtt_own_connection_t conn;
    fermyon_spin_2_0_0_mqtt_error_t err;
    if (!fermyon_spin_2_0_0_mqtt_static_connection_open(&address, &empty, &empty, 30, &conn, &err)) {
        mqtt_error(out, &err);
    } else {
        fermyon_spin_2_0_0_mqtt_payload_t payload = {body.ptr, body.len};
        if (!fermyon_spin_2_0_0_mqtt_method_connection_publish(fermyon_spin_2_0_0_mqtt_borrow_connection(conn), &topic, &payload,
                                                         (fermyon_spin_2_0_0_mqtt_qos_t)qos, &err))
            mqtt_error(out, &err);
        else respond_text(out, 200, "ok");
        fermyon_spin_2_0_0_mqtt_connection_drop_own(conn);
    }
    buf_free(&body);
    free(addr);
}

/* ------------------------------------------------------------------ entry point */

void exports_wasi_http_incoming_handler_handle(exports_wasi_http_incoming_handler_own_incoming_request_t request,
                                               outparam_t response_out) {
    wasi_http_types_borrow_incoming_request_t req = wasi_http_types_borrow_incoming_request(request);

    wasi_http_types_method_t m;
    wasi_http_types_method_incoming_request_method(req, &m);
    const char *method = m.tag == WASI_HTTP_TYPES_METHOD_GET      ? "GET"
                         : m.tag == WASI_HTTP_TYPES_METHOD_PUT    ? "PUT"
                         : m.tag == WASI_HTTP_TYPES_METHOD_POST   ? "POST"
                         : m.tag == WASI_HTTP_TYPES_METHOD_DELETE ? "DELETE"
                                                                  : "OTHER";
    wasi_http_types_method_free(&m);

    kv_app_string_t pq;
    char *path_with_query;
    if (wasi_http_types_method_incoming_request_path_with_query(req, &pq)) {
        path_with_query = strndup((const char *)pq.ptr, pq.len);
        kv_app_string_free(&pq);
    } else {
        path_with_query = strdup("/");
    }
    size_t plen = strcspn(path_with_query, "?");
    const char *query = path_with_query[plen] == '?' ? path_with_query + plen + 1 : "";

    /* percent-decoded path segments (leading and trailing "/" ignored) */
    size_t start = 0, end = plen;
    while (start < end && path_with_query[start] == '/') start++;
    while (end > start && path_with_query[end - 1] == '/') end--;
    size_t nseg = 1;
    for (size_t i = start; i < end; i++)
        if (path_with_query[i] == '/') nseg++;
    char **seg = calloc(nseg, sizeof(char *));
    for (size_t i = start, k = 0; k < nseg; k++) {
        size_t len = 0;
        while (i + len < end && path_with_query[i + len] != '/') len++;
        seg[k] = pct_decode(path_with_query + i, len);
        i += len + 1;
    }

    if (strcmp(seg[0], "kv") == 0) route_kv(response_out, req, seg, nseg);
    else if (strcmp(seg[0], "var") == 0) route_var(response_out, seg, nseg);
    else if (strcmp(seg[0], "config") == 0) route_config(response_out, seg, nseg);
    else if (strcmp(seg[0], "config-all") == 0 && nseg == 1) route_config_all(response_out);
    else if (strcmp(seg[0], "atomic") == 0) route_atomic(response_out, seg, nseg, query);
    else if (strcmp(seg[0], "batch") == 0) route_batch(response_out, req, method, seg, nseg, query);
    else if (strcmp(seg[0], "sql") == 0) route_sql(response_out, req, seg, nseg);
    else if (strcmp(seg[0], "redis") == 0) route_redis(response_out, req, seg, nseg, query);
    else if (strcmp(seg[0], "pg") == 0 || strcmp(seg[0], "mysql") == 0) route_rdbms(response_out, req, seg, nseg, query);
    else if (strcmp(seg[0], "mqtt") == 0) route_mqtt(response_out, req, seg, nseg, query);
    else respond_text(response_out, 404, "not-found");

    for (size_t k = 0; k < nseg; k++) free(seg[k]);
    free(seg);
    free(path_with_query);
    wasi_http_types_incoming_request_drop_own(request);
}
