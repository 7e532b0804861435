/* counter: a component in C. It sends the numbers 1, 2, 3, ... on channel
 * "numbers", one every --interval-ms, and heartbeats while it waits.
 *
 * The channel lives in the runtime, so a restart of this process resumes
 * where its predecessor stopped: the next number is the channel's next
 * message id. Run it with examples/components/system.toml:
 *
 *   slate run examples/components/system.toml
 */
#include <slate/slate.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
  int interval_ms = 100;
  for (int i = 1; i + 1 < argc; ++i) {
    if (strcmp(argv[i], "--interval-ms") == 0) interval_ms = atoi(argv[i + 1]);
  }
  int rc = slate_init();
  if (rc != SLATE_OK) {
    fprintf(stderr, "counter: %s\n", slate_last_error());
    return 2;
  }
  slate_tx *out = slate_tx_open("numbers");
  if (out == NULL) {
    fprintf(stderr, "counter: %s\n", slate_last_error());
    return 2;
  }
  slate_ready();
  for (;;) {
    uint64_t n = slate_next_id(out);
    char text[32];
    int len = snprintf(text, sizeof text, "%llu", (unsigned long long)n);
    /* Wait up to a second for room, heartbeating meanwhile. */
    rc = slate_send(out, text, (size_t)len, 1000);
    if (rc == SLATE_EFULL || rc == SLATE_EPEERDOWN) {
      slate_heartbeat();
      /* A stopped summer makes a full queue return at once: wait a little
         rather than spin. */
      if (rc == SLATE_EPEERDOWN) sleep_ms(200);
      continue;
    }
    if (rc != SLATE_OK) {
      fprintf(stderr, "counter: %s\n", slate_last_error());
      return 1; /* let it crash: the supervisor restarts us */
    }
    slate_heartbeat();
    sleep_ms(interval_ms);
  }
}
