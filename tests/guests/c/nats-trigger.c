/* Boson test guest (C): a NATS trigger handler (exports boson:nats/inbound-nats@0.1.0, world
 * `local:guest/nats-trigger-app` of tests/guests/wit/triggers.wit) that records each message, its
 * subject and headers in Redis through fermyon:spin/redis@2.0.0 and replies "reply:<payload>";
 * see tests/guests/README.md. */
#include "trigger-common.h"

/* RPUSH <record_key>:headers "name=value"... (one command for all headers) */
static bool record_headers(recorder_t *r, trigger_app_list_tuple2_string_string_t *headers, char **why) {
    size_t n = headers->len;
    redis_param_t *args = calloc(n + 1, sizeof *args);
    buf_t *entries = calloc(n, sizeof *entries);
    if (!args || !entries) __builtin_trap();
    char *key = concat(r->key, ":headers", strlen(":headers"));
    args[0] = bin_arg(key, strlen(key));
    for (size_t i = 0; i < n; i++) {
        buf_append(&entries[i], headers->ptr[i].f0.ptr, headers->ptr[i].f0.len);
        buf_puts(&entries[i], "=");
        buf_append(&entries[i], headers->ptr[i].f1.ptr, headers->ptr[i].f1.len);
        args[i + 1] = bin_arg(entries[i].ptr, entries[i].len);
    }
    bool ok = execute(r, "RPUSH", args, n + 1, NULL, why);
    for (size_t i = 0; i < n; i++) free(entries[i].ptr);
    free(entries);
    free(args);
    free(key);
    return ok;
}

bool exports_boson_nats_inbound_nats_handle_message(exports_boson_nats_inbound_nats_message_t *message,
                                                    trigger_app_option_list_u8_t *ret,
                                                    exports_boson_nats_inbound_nats_error_t *err) {
    recorder_t r;
    char *why = NULL;
    bool ok = record_message(&r, message->payload.ptr, message->payload.len, &why);
    if (ok) {
        ok = rpush(&r, ":subjects", message->subject.ptr, message->subject.len, &why) &&
             (message->headers.len == 0 || record_headers(&r, &message->headers, &why));
        recorder_close(&r);
    }
    if (ok) {
        /* some("reply:" + payload), malloc'd: freed by the bindings after return */
        buf_t reply = {0};
        buf_puts(&reply, "reply:");
        buf_append(&reply, message->payload.ptr, message->payload.len);
        ret->is_some = true;
        ret->val.ptr = reply.ptr;
        ret->val.len = reply.len;
    } else {
        err->tag = BOSON_NATS_TYPES_ERROR_OTHER;
        err->val.other.ptr = (uint8_t *)why; /* malloc'd: freed by the bindings after return */
        err->val.other.len = strlen(why);
    }
    exports_boson_nats_inbound_nats_message_free(message);
    return ok;
}
