/* Boson test guests (C): what the message and schedule trigger guests (redis-, mqtt-, nats-,
 * cron-trigger.c) share: reading the variables `redis_address` and `record_key`, one outbound
 * Redis connection (fermyon:spin/redis@2.0.0) per event, RPUSH/INCR through `execute` with
 * binary arguments, and the "trap" / "loop" / "fail-once:" payloads.
 *
 * Include it before anything else: it includes the bindings of one of the worlds in
 * tests/guests/wit/triggers.wit, which build.sh generates as `trigger_app.h` (wit-bindgen
 * --rename-world trigger_app). Boson's WIT also holds the unversioned fermyon:spin package
 * (inbound-redis), so wit-bindgen names fermyon:spin/<name>@2.0.0 fermyon_spin_2_0_0_<name>.
 * No stdio (snprintf would pull in wasi_snapshot_preview1.fd_write): the guests import nothing
 * but their world. Failures are reported as a malloc'd, NUL-terminated description in `*why`,
 * which each guest turns into its interface's error value. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trigger_app.h"

/* ------------------------------------------------------------------ growable byte buffer */

typedef struct {
    uint8_t *ptr;
    size_t len, cap;
} buf_t;

static inline void buf_append(buf_t *b, const void *data, size_t len) {
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + len) cap *= 2;
        uint8_t *p = realloc(b->ptr, cap);
        if (!p) __builtin_trap();
        b->ptr = p;
        b->cap = cap;
    }
    if (len) memcpy(b->ptr + b->len, data, len);
    b->len += len;
}

static inline void buf_puts(buf_t *b, const char *s) { buf_append(b, s, strlen(s)); }

static inline void buf_u64(buf_t *b, uint64_t v) {
    char digits[20];
    size_t n = 0;
    do digits[n++] = (char)('0' + v % 10); while ((v /= 10) != 0);
    while (n) buf_append(b, &digits[--n], 1);
}

/* The buffer's bytes followed by NUL, as a malloc'd C string (the buffer is given up). */
static inline char *buf_cstr(buf_t *b) {
    buf_append(b, "", 1);
    return (char *)b->ptr;
}

/* A malloc'd "<a><b>" where b has length blen. */
static inline char *concat(const char *a, const void *b, size_t blen) {
    buf_t r = {0};
    buf_puts(&r, a);
    buf_append(&r, b, blen);
    return buf_cstr(&r);
}

/* ------------------------------------------------------------------ payloads */

static inline bool payload_is(const uint8_t *p, size_t n, const char *s) {
    return n == strlen(s) && memcmp(p, s, n) == 0;
}

/* "trap" traps, "loop" never returns (the host interrupts it at its deadline). */
static inline void trap_or_loop(const uint8_t *p, size_t n) {
    if (payload_is(p, n, "trap")) __builtin_trap();
    if (payload_is(p, n, "loop")) {
        volatile uint64_t spins = 0;
        for (;;) spins++;
    }
}

/* ------------------------------------------------------------------ variables + Redis */

/* An argument of `execute`. */
typedef fermyon_spin_2_0_0_redis_redis_parameter_t redis_param_t;

typedef struct {
    char *key;                                /* the variable record_key */
    fermyon_spin_2_0_0_redis_own_connection_t conn; /* open to the variable redis_address */
} recorder_t;

/* "<what>: <case>[: <message>]" for a fermyon:spin/redis error (which it frees). */
static inline char *redis_why(const char *what, fermyon_spin_2_0_0_redis_error_t *err) {
    buf_t b = {0};
    buf_puts(&b, what);
    switch (err->tag) {
    case FERMYON_SPIN_2_0_0_REDIS_ERROR_INVALID_ADDRESS: buf_puts(&b, ": invalid-address"); break;
    case FERMYON_SPIN_2_0_0_REDIS_ERROR_TOO_MANY_CONNECTIONS: buf_puts(&b, ": too-many-connections"); break;
    case FERMYON_SPIN_2_0_0_REDIS_ERROR_TYPE_ERROR: buf_puts(&b, ": type-error"); break;
    case FERMYON_SPIN_2_0_0_REDIS_ERROR_OTHER:
        buf_puts(&b, ": other: ");
        buf_append(&b, err->val.other.ptr, err->val.other.len);
        break;
    default: buf_puts(&b, ": unknown redis error"); break;
    }
    fermyon_spin_2_0_0_redis_error_free(err);
    return buf_cstr(&b);
}

/* The value of variable `name` (malloc'd), or NULL with *why set to
 * "variable <name>: <case>: <message>". */
static inline char *get_var(const char *name, char **why) {
    trigger_app_string_t n = {(uint8_t *)name, strlen(name)}, value;
    fermyon_spin_2_0_0_variables_error_t err;
    if (fermyon_spin_2_0_0_variables_get(&n, &value, &err)) {
        char *r = concat("", value.ptr, value.len);
        trigger_app_string_free(&value);
        return r;
    }
    buf_t b = {0};
    trigger_app_string_t *msg = &err.val.other;
    buf_puts(&b, "variable ");
    buf_puts(&b, name);
    switch (err.tag) {
    case FERMYON_SPIN_2_0_0_VARIABLES_ERROR_INVALID_NAME: buf_puts(&b, ": invalid-name: "); msg = &err.val.invalid_name; break;
    case FERMYON_SPIN_2_0_0_VARIABLES_ERROR_UNDEFINED: buf_puts(&b, ": undefined: "); msg = &err.val.undefined; break;
    case FERMYON_SPIN_2_0_0_VARIABLES_ERROR_PROVIDER: buf_puts(&b, ": provider: "); msg = &err.val.provider; break;
    default: buf_puts(&b, ": other: "); break;
    }
    buf_append(&b, msg->ptr, msg->len);
    fermyon_spin_2_0_0_variables_error_free(&err);
    *why = buf_cstr(&b);
    return NULL;
}

/* Reads the variables and connects. Returns false with *why set. */
static inline bool recorder_open(recorder_t *r, char **why) {
    char *address = get_var("redis_address", why);
    if (!address) return false;
    r->key = get_var("record_key", why);
    if (!r->key) {
        free(address);
        return false;
    }
    trigger_app_string_t a = {(uint8_t *)address, strlen(address)};
    fermyon_spin_2_0_0_redis_error_t err;
    bool ok = fermyon_spin_2_0_0_redis_static_connection_open(&a, &r->conn, &err);
    free(address);
    if (!ok) {
        *why = redis_why("redis open", &err);
        free(r->key);
    }
    return ok;
}

static inline void recorder_close(recorder_t *r) {
    fermyon_spin_2_0_0_redis_connection_drop_own(r->conn);
    free(r->key);
}

/* A binary `execute` argument viewing bytes (not owned). */
static inline redis_param_t bin_arg(const void *p, size_t n) {
    redis_param_t a;
    a.tag = FERMYON_SPIN_2_0_0_REDIS_REDIS_PARAMETER_BINARY;
    a.val.binary.ptr = (uint8_t *)p;
    a.val.binary.len = n;
    return a;
}

/* Runs `command` with `args`; on success stores the first reply value's int64 (0 if there is
 * none) in *int_reply when it is not NULL. Returns false with *why set. */
static inline bool execute(recorder_t *r, const char *command, redis_param_t *args,
                           size_t nargs, int64_t *int_reply, char **why) {
    trigger_app_string_t cmd = {(uint8_t *)command, strlen(command)};
    fermyon_spin_2_0_0_redis_list_redis_parameter_t list = {args, nargs};
    fermyon_spin_2_0_0_redis_list_redis_result_t results;
    fermyon_spin_2_0_0_redis_error_t err;
    if (!fermyon_spin_2_0_0_redis_method_connection_execute(fermyon_spin_2_0_0_redis_borrow_connection(r->conn), &cmd, &list,
                                                      &results, &err)) {
        *why = redis_why(command, &err);
        return false;
    }
    if (int_reply)
        *int_reply = results.len && results.ptr[0].tag == FERMYON_SPIN_2_0_0_REDIS_REDIS_RESULT_INT64
                         ? results.ptr[0].val.int64 : 0;
    fermyon_spin_2_0_0_redis_list_redis_result_free(&results);
    return true;
}

/* RPUSH <record_key><suffix> <value> */
static inline bool rpush(recorder_t *r, const char *suffix, const void *value, size_t len, char **why) {
    char *key = concat(r->key, suffix, strlen(suffix));
    redis_param_t args[2] = {bin_arg(key, strlen(key)), bin_arg(value, len)};
    bool ok = execute(r, "RPUSH", args, 2, NULL, why);
    free(key);
    return ok;
}

/* ------------------------------------------------------------------ the message guests' flow */

/* For payload p[0..n): traps or loops on "trap"/"loop"; opens `r`; for "fail-once:..." counts
 * the attempt (INCR <record_key>:attempts:<payload>) and fails the first one; then RPUSH
 * <record_key> <payload>. Returns true with `r` open (the caller may record more, then calls
 * recorder_close), or false with `r` closed and *why set. */
static inline bool record_message(recorder_t *r, const uint8_t *p, size_t n, char **why) {
    trap_or_loop(p, n);
    if (!recorder_open(r, why)) return false;
    if (n >= strlen("fail-once:") && memcmp(p, "fail-once:", strlen("fail-once:")) == 0) {
        buf_t key = {0}; /* the payload's bytes as they are (may hold NUL) */
        buf_puts(&key, r->key);
        buf_puts(&key, ":attempts:");
        buf_append(&key, p, n);
        redis_param_t arg = bin_arg(key.ptr, key.len);
        int64_t attempts = 0;
        bool ok = execute(r, "INCR", &arg, 1, &attempts, why);
        free(key.ptr);
        if (ok && attempts == 1) *why = concat("fail-once: the first attempt fails", "", 0);
        if (!ok || attempts == 1) {
            recorder_close(r);
            return false;
        }
    }
    if (!rpush(r, "", p, n, why)) {
        recorder_close(r);
        return false;
    }
    return true;
}
