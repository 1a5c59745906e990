/* gateway.h - one C interface for every way a message leaves notify, chosen
 * per channel in [notify] (sms_gateway, email_gateway):
 *
 *   file      each message appended as a JSON line to ${file_dir}/<channel>.jsonl
 *             (the embedded default: ./pm up shows what would have been sent)
 *   http-sms  a JSON POST to sms_url through libcurl; the provider's answer
 *             mapped to sent / retryable (timeout, 5xx, 429 + Retry-After) /
 *             permanent (other 4xx)
 *   smtp      email through libcurl's SMTP and MIME API (UTF-8 subject and body)
 *
 * Network gateways send asynchronously on the daemon's loop (pm/curl.h): a
 * slow or dead gateway never blocks it. Every gateway sends the message's
 * dedupe key as the provider's idempotency key (HTTP Idempotency-Key header,
 * SMTP Message-ID), so a message resent after a crash can be recognised. */
#ifndef NOTIFY_GATEWAY_H
#define NOTIFY_GATEWAY_H

#include "notify.h"
#include "pm/config.h"

#include <ev.h>

/* Called once per message with the gateway's answer (res borrowed for the call). */
typedef void (*notify_sent_fn) (notify_send_t *msg, const notify_result_t *res, void *arg);

struct notify_gateway {
    const char *kind;
    /* Starts sending msg (borrowed until done). done runs exactly once, on the
     * loop, possibly before send returns (the file gateway). */
    void (*send) (notify_gateway_t *g, notify_send_t *msg, notify_sent_fn done, void *arg);
    /* After a run of sends: the file gateway flushes its file. May be NULL. */
    void (*flush) (notify_gateway_t *g);
    /* Aborts what is in flight (done is not called) and frees g. */
    void (*destroy) (notify_gateway_t *g);
};

/* The gateway `kind` for channel, configured from [notify]. NULL with *err
 * (malloc'd, naming the config line) when the kind does not fit the channel
 * or its settings are wrong. */
notify_gateway_t *notify_gateway_new (const char *kind, int channel, struct ev_loop *loop, const pm_config_t *cfg,
                                      char **err);

notify_gateway_t *notify_gateway_file_new (int channel, const pm_config_t *cfg, char **err);
notify_gateway_t *notify_gateway_sms_new (struct ev_loop *loop, const pm_config_t *cfg, char **err);
notify_gateway_t *notify_gateway_smtp_new (struct ev_loop *loop, const pm_config_t *cfg, char **err);

/* Copies at most max bytes of s into buf as valid UTF-8 on one line (invalid
 * bytes and control characters become '?'); for provider answers quoted in
 * reasons. Returns buf. */
const char *notify_gateway_clean (const char *s, size_t len, size_t max, char *buf, size_t size);

#endif
