/*
 * A minimal third-party UPnP control point for the interop test (test/interop.test.ts), built on
 * GUPnP/GSSDP (the library Rygel and the GNOME UPnP tools use), not on anything of ours.
 *
 *   gupnp-cp IFACE SECONDS
 *
 * Pins itself to IFACE, searches for urn:schemas-upnp-org:device:MediaServer:1 and, for every
 * MediaServer that appears, prints one line per step, each a key and tab-separated fields:
 *
 *   available   UDN  LOCATION  FRIENDLY-NAME
 *   scpd        UDN  SERVICE-TYPE  N-ACTIONS  (GUPnP parsed the service description)
 *   browse      UDN  NUMBER-RETURNED  TOTAL-MATCHES  UPDATE-ID  RESULT-BYTES
 *   error       UDN  STEP  MESSAGE
 *   byebye      USN  (GSSDP heard ssdp:byebye for a resource it knew)
 *   unavailable UDN  (GUPnP dropped the device)
 *
 * and exits after SECONDS.
 */
#include <libgupnp/gupnp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CDS "urn:schemas-upnp-org:service:ContentDirectory:1"
#define CMS "urn:schemas-upnp-org:service:ConnectionManager:1"

/* Set once the main loop is over: disposing the control point drops every resource it knows and
 * emits the unavailable signals for them, which must not pass for a byebye heard on the network. */
static gboolean finished = FALSE;

static void say(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

static void on_browse(GObject *source, GAsyncResult *res, gpointer user_data) {
  char *udn = user_data;
  GError *err = NULL;
  /* transfer none: the action stays owned by the proxy call */
  GUPnPServiceProxyAction *action =
      gupnp_service_proxy_call_action_finish(GUPNP_SERVICE_PROXY(source), res, &err);
  char *result = NULL;
  guint returned = 0, total = 0, update = 0;
  if (action != NULL &&
      gupnp_service_proxy_action_get_result(action, &err, "Result", G_TYPE_STRING, &result,
                                            "NumberReturned", G_TYPE_UINT, &returned,
                                            "TotalMatches", G_TYPE_UINT, &total, "UpdateID",
                                            G_TYPE_UINT, &update, NULL)) {
    say("browse\t%s\t%u\t%u\t%u\t%zu", udn, returned, total, update, result ? strlen(result) : 0);
  } else {
    say("error\t%s\tbrowse\t%s", udn, err ? err->message : "no result");
  }
  g_clear_error(&err);
  g_free(result);
  g_free(udn);
}

static void on_introspect(GObject *source, GAsyncResult *res, gpointer user_data) {
  char *udn = user_data;
  GError *err = NULL;
  GUPnPServiceInfo *info = GUPNP_SERVICE_INFO(source);
  GUPnPServiceIntrospection *intro = gupnp_service_info_introspect_finish(info, res, &err);
  if (intro != NULL) {
    say("scpd\t%s\t%s\t%u", udn, gupnp_service_info_get_service_type(info),
        g_list_length((GList *)gupnp_service_introspection_list_actions(intro)));
    g_object_unref(intro);
  } else {
    say("error\t%s\tscpd\t%s", udn, err ? err->message : "no introspection");
  }
  g_clear_error(&err);
  g_free(udn);
}

static void introspect(GUPnPDeviceInfo *dev, const char *type, const char *udn) {
  GUPnPServiceInfo *svc = gupnp_device_info_get_service(dev, type);
  if (svc == NULL) {
    say("error\t%s\tscpd\tno service %s", udn, type);
    return;
  }
  gupnp_service_info_introspect_async(svc, NULL, on_introspect, g_strdup(udn));
  g_object_unref(svc);
}

static void on_available(GUPnPControlPoint *cp, GUPnPDeviceProxy *proxy, gpointer user_data) {
  (void)cp;
  (void)user_data;
  GUPnPDeviceInfo *dev = GUPNP_DEVICE_INFO(proxy);
  const char *udn = gupnp_device_info_get_udn(dev);
  char *name = gupnp_device_info_get_friendly_name(dev);
  say("available\t%s\t%s\t%s", udn, gupnp_device_info_get_location(dev), name ? name : "");
  g_free(name);

  introspect(dev, CDS, udn);
  introspect(dev, CMS, udn);

  GUPnPServiceInfo *cds = gupnp_device_info_get_service(dev, CDS);
  if (cds == NULL) return;
  GUPnPServiceProxyAction *action = gupnp_service_proxy_action_new(
      "Browse", "ObjectID", G_TYPE_STRING, "0", "BrowseFlag", G_TYPE_STRING,
      "BrowseDirectChildren", "Filter", G_TYPE_STRING, "*", "StartingIndex", G_TYPE_UINT, 0,
      "RequestedCount", G_TYPE_UINT, 0, "SortCriteria", G_TYPE_STRING, "", NULL);
  gupnp_service_proxy_call_action_async(GUPNP_SERVICE_PROXY(cds), action, NULL, on_browse,
                                        g_strdup(udn));
  gupnp_service_proxy_action_unref(action);
  g_object_unref(cds);
}

static void on_unavailable(GUPnPControlPoint *cp, GUPnPDeviceProxy *proxy, gpointer user_data) {
  (void)cp;
  (void)user_data;
  if (finished) return;
  say("unavailable\t%s", gupnp_device_info_get_udn(GUPNP_DEVICE_INFO(proxy)));
}

static void on_resource_unavailable(GSSDPResourceBrowser *browser, const char *usn, gpointer user_data) {
  (void)browser;
  (void)user_data;
  if (finished) return;
  say("byebye\t%s", usn);
}

static gboolean quit(gpointer loop) {
  g_main_loop_quit(loop);
  return G_SOURCE_REMOVE;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s IFACE SECONDS\n", argv[0]);
    return 2;
  }
  GError *err = NULL;
  GUPnPContext *ctx = gupnp_context_new_full(argv[1], NULL, 0, GSSDP_UDA_VERSION_1_0, &err);
  if (ctx == NULL) {
    fprintf(stderr, "context on %s: %s\n", argv[1], err->message);
    return 1;
  }
  GUPnPControlPoint *cp = gupnp_control_point_new(ctx, "urn:schemas-upnp-org:device:MediaServer:1");
  g_signal_connect(cp, "device-proxy-available", G_CALLBACK(on_available), NULL);
  g_signal_connect(cp, "device-proxy-unavailable", G_CALLBACK(on_unavailable), NULL);
  g_signal_connect(cp, "resource-unavailable", G_CALLBACK(on_resource_unavailable), NULL);
  gssdp_resource_browser_set_active(GSSDP_RESOURCE_BROWSER(cp), TRUE);

  GMainLoop *loop = g_main_loop_new(NULL, FALSE);
  g_timeout_add_seconds((guint)atoi(argv[2]), quit, loop);
  g_main_loop_run(loop);
  finished = TRUE;

  g_main_loop_unref(loop);
  g_object_unref(cp);
  g_object_unref(ctx);
  return 0;
}
