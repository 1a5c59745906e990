/* pm-gateway: the HTTP/JSON API, event stream, webhooks and web board. */
#include "gateway.h"

int
main (int argc, char **argv)
{
    return pm_daemon_main (&gateway_spec, argc, argv);
}
