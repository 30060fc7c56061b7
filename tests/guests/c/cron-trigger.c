/* Boson test guest (C): a cron trigger handler (exports handle-cron-event, world
 * `local:guest/cron-trigger-app` of tests/guests/wit/triggers.wit) that records each run's
 * timestamp in Redis through fermyon:spin/redis@2.0.0; see tests/guests/README.md. With the
 * variable `trap_every_third` = "yes", a run whose timestamp is a multiple of 3 traps after
 * recording (the trigger must go on). */
#include "trigger-common.h"

static bool trap_every_third(void) {
    char *why = NULL;
    char *v = get_var("trap_every_third", &why);
    bool yes = v && strcmp(v, "yes") == 0;
    free(v);
    free(why);
    return yes;
}

bool exports_trigger_app_handle_cron_event(trigger_app_metadata_t *metadata, trigger_app_error_t *err) {
    recorder_t r;
    char *why = NULL;
    bool ok = recorder_open(&r, &why);
    if (ok) {
        buf_t timestamp = {0}; /* decimal seconds since the epoch */
        buf_u64(&timestamp, metadata->timestamp);
        ok = rpush(&r, "", timestamp.ptr, timestamp.len, &why);
        free(timestamp.ptr);
        recorder_close(&r);
    }
    if (ok && metadata->timestamp % 3 == 0 && trap_every_third()) __builtin_trap();
    if (!ok) {
        err->tag = FERMYON_SPIN_CRON_CRON_TYPES_ERROR_OTHER;
        err->val.other.ptr = (uint8_t *)why; /* malloc'd: freed by the bindings after return */
        err->val.other.len = strlen(why);
    }
    return ok;
}
