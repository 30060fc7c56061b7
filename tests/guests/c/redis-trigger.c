/* Boson test guest (C): a Redis trigger handler (exports fermyon:spin/inbound-redis, world
 * `local:guest/redis-trigger-app` of tests/guests/wit/triggers.wit) that records each message in
 * Redis through fermyon:spin/redis@2.0.0; see tests/guests/README.md ("trigger guests"). */
#include "trigger-common.h"

bool exports_fermyon_spin_inbound_redis_handle_message(exports_fermyon_spin_inbound_redis_payload_t *message,
                                                       exports_fermyon_spin_inbound_redis_error_t *err) {
    recorder_t r;
    char *why = NULL;
    bool ok = record_message(&r, message->ptr, message->len, &why);
    if (ok) recorder_close(&r);
    free(why); /* the 2.0 interface's error carries no text */
    exports_fermyon_spin_inbound_redis_payload_free(message);
    if (!ok) *err = FERMYON_SPIN_REDIS_TYPES_ERROR_ERROR;
    return ok;
}
