# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secure WebSocket for WebRTC webphones, for the KEMI router (voxplane_kemi.py).

Kamailio hands every HTTP request it gets on a TCP or TLS socket to ksr_xhttp_event (xhttp's
event callback). Only a WebSocket upgrade (RFC 6455: GET, Upgrade: websocket, Connection:
Upgrade) of the configured path, on a wss listen entry's port over TLS, from an allowed Origin
becomes a WebSocket connection (ws_handle_handshake); it then carries SIP (RFC 7118), routed
like any other request. Everything else is answered 403 or 404 and the connection closed.

Settings (voxplane_settings.json "websocket"): ports (the wss listen entries' ports), path,
origins (empty: any).
"""

import KSR  # provided by app_python3 inside Kamailio


class WebSocket(object):
    """The WebSocket handshake policy of one worker, as the settings' "websocket" section says."""

    def __init__(self, settings):
        settings = settings or {}
        self.ports = frozenset(int(port) for port in settings.get("ports") or ())
        self.path = settings.get("path") or "/ws"
        self.origins = frozenset(origin.rstrip("/").lower() for origin in settings.get("origins") or ())

    def refusal(self):
        """Why this HTTP request may not become a WebSocket connection: (code, reason), or None."""
        if int(KSR.pv.get("$Rp") or 0) not in self.ports or (KSR.pv.get("$pr") or "").lower() != "tls":
            return 403, "Forbidden: not a secure WebSocket port"
        upgrade = (KSR.pv.get("$hdr(Upgrade)") or "").lower()
        connection = (KSR.pv.get("$hdr(Connection)") or "").lower()
        if KSR.pv.get("$rm") != "GET" or upgrade != "websocket" or "upgrade" not in connection:
            return 404, "Not Found"
        if (KSR.pv.get("$hu") or "").split("?", 1)[0] != self.path:
            return 404, "Not Found"
        if self.origins and (KSR.pv.get("$hdr(Origin)") or "").rstrip("/").lower() not in self.origins:
            return 403, "Forbidden: origin not allowed"
        return None

    def handle(self):
        """xhttp:request: upgrade an allowed handshake; refuse everything else and close."""
        KSR.set_reply_close()
        KSR.set_reply_no_connect()
        refusal = self.refusal()
        if refusal is None:
            # On a malformed handshake (key, version, protocol) the module answers it itself.
            KSR.websocket.handle_handshake()
            return 1
        KSR.notice("voxplane: HTTP %s %s from %s:%s on port %s refused: %d %s\n"
                   % (KSR.pv.get("$rm"), KSR.pv.get("$hu"), KSR.pv.get("$si"), KSR.pv.get("$sp"),
                      KSR.pv.get("$Rp"), refusal[0], refusal[1]))
        KSR.xhttp.xhttp_reply(refusal[0], refusal[1], "", "")
        return 1
