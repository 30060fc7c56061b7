/* Boson test guest (C): an MQTT trigger handler (exports handle-message, world
 * `local:guest/mqtt-trigger-app` of tests/guests/wit/triggers.wit) that records each message and
 * its topic in Redis through fermyon:spin/redis@2.0.0; see tests/guests/README.md. */
#include "trigger-common.h"

bool exports_trigger_app_handle_message(trigger_app_payload_t *message, trigger_app_metadata_t *metadata,
                                        trigger_app_error_t *err) {
    recorder_t r;
    char *why = NULL;
    bool ok = record_message(&r, message->ptr, message->len, &why);
    if (ok) {
        ok = rpush(&r, ":topics", metadata->topic.ptr, metadata->topic.len, &why);
        recorder_close(&r);
    }
    trigger_app_payload_free(message);
    trigger_app_metadata_free(metadata);
    if (!ok) {
        err->tag = SPIN_MQTT_TRIGGER_SPIN_MQTT_TYPES_ERROR_OTHER;
        err->val.other.ptr = (uint8_t *)why; /* malloc'd: freed by the bindings after return */
        err->val.other.len = strlen(why);
    }
    return ok;
}
