# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NAT traversal and the media relay, for the KEMI router (voxplane_kemi.py).

Signalling: nathelper tells a phone behind NAT (a private Contact, a Via that is not where the
request came from, a source port that is not the Via's). Its REGISTER stores the source
address with the binding (fix_nated_register: the registrar's received AVP) and the NAT
branch flag, which makes nathelper send it OPTIONS keepalives; its other requests and the
replies of a callee behind NAT get an alias on the Contact (set_contact_alias), which
in-dialog requests are routed by (handle_ruri_alias).

Media: rtpengine relays a call's RTP when the caller or the callee (the binding's NAT flag)
is behind NAT, when the two sides' media differ (plain RTP; SRTP with SDES keys over TLS;
WebRTC's DTLS-SRTP with ICE over secure WebSocket), or always when the role or the call's
tenant (media_relay: always) says so. A WebSocket client counts as behind NAT whatever its
address (its Contact is an .invalid host): every call with a webphone is relayed, and
rtpengine converts between DTLS-SRTP and what the other side speaks. The branch route offers, the reply route
answers, and every way a call ends deletes: BYE, CANCEL and failed branches (the failure
route). A call whose media is relayed carries ``nat=yes`` in its Record-Route, so that
in-dialog requests (re-INVITE, UPDATE, BYE) know it without any state, and ``vx_media`` in its
dialog, which the failure route reads.

Settings (voxplane_settings.json "media"): nat (nathelper loaded), rtpengine (module loaded),
relay ("nat" or "always").
"""

import KSR  # provided by app_python3 inside Kamailio

# Message flag: the request came from behind NAT. Branch flag 7: the callee (binding) is
# behind NAT: usrloc saves it with the binding (nat_bflag) and nathelper pings such bindings
# (sipping_bflag); the cfg sets both to 7.
FLAG_SOURCE_NATED = 5
# Message flag: the tenant of the call has every call's media relayed (tenant media_relay: always).
FLAG_RELAY_FORCED = 6
# Message flag: the request came over a WebSocket (a WebRTC client); in the tm reply route these
# are the flags of the request the reply is for, so the answer SDP is made for the caller's kind.
FLAG_SOURCE_WEBRTC = 9
BFLAG_NATED = 7
# nat_uac_test: 1 Contact is a private address, 2 Via is not the source address, 16 the source
# port is not the Via's; 64 it came over a WebSocket; 8 the SDP holds a private address.
_NAT_TESTS = 1 | 2 | 16 | 64
_NAT_TEST_SDP = 8
# Branch flag 8: this branch's media goes through rtpengine (set by the branch route, read by
# the reply route of the same branch).
BFLAG_RELAYED = 8
_RR_PARAM = "nat=yes"
# A media leg's kind: what its SDP must offer (see _profile).
RTP, SRTP, WEBRTC = "rtp", "srtp", "webrtc"
_DIALOG_VAR = "$dlg_var(vx_media)"


class Media(object):
    """NAT handling and rtpengine for one worker, as the settings' "media" section says."""

    def __init__(self, settings):
        settings = settings or {}
        self.nat = bool(settings.get("nat"))
        self.rtpengine = bool(settings.get("rtpengine"))
        self.always = settings.get("relay") == "always"

    # Requests ------------------------------------------------------------------------

    def reply_to_source(self):
        """Any request: its replies go back to the address and port it came from (rport), so
        that they pass the sender's NAT; the first thing the router does with a request."""
        if self.nat:
            KSR.force_rport()

    def detect(self, method):
        """A request the router is about to act on (a REGISTER it saves, a call it relays, an
        in-dialog request, a SUBSCRIBE): mark it when its sender is behind NAT; a REGISTER gets
        its source address stored with the binding, a dialog-creating request an alias on its
        Contact. Requests answered at once (a challenge, a 404, a 480) need none of it."""
        if not self.nat:
            return
        # A webphone's calls (a message flag: the binding of a REGISTER does not keep it; its
        # transport=ws Contact does).
        if method != "REGISTER" and (KSR.pv.get("$pr") or "").lower() in ("ws", "wss"):
            KSR.setflag(FLAG_SOURCE_WEBRTC)
        if KSR.nathelper.nat_uac_test(_NAT_TESTS) <= 0:
            return
        KSR.setflag(FLAG_SOURCE_NATED)
        if method == "REGISTER":
            KSR.nathelper.fix_nated_register()
            KSR.setbflag(BFLAG_NATED)
        elif KSR.siputils.is_first_hop() > 0 and KSR.pv.get("$hdr(Contact)"):
            KSR.nathelper.set_contact_alias()

    def in_dialog(self, method):
        """An in-dialog request that loose_route relays: route it to a Contact alias, and let
        rtpengine see a new offer (re-INVITE, UPDATE), the answer in an ACK, or the end (BYE)."""
        if self.nat and not KSR.pv.get("$du"):
            KSR.nathelper.handle_ruri_alias()
        if not self.rtpengine or KSR.rr.check_route_param(_RR_PARAM) <= 0:
            return
        KSR.setbflag(BFLAG_RELAYED)  # the reply route answers for this dialog as well
        KSR.tm.t_on_reply("ksr_reply_route_media")
        if method == "BYE":
            KSR.rtpengine.rtpengine_delete0()
        elif method in ("INVITE", "UPDATE") and KSR.textops.has_body_type("application/sdp") > 0:
            KSR.rtpengine.rtpengine_offer(self._flags(offer=True))
        elif method == "ACK" and KSR.textops.has_body_type("application/sdp") > 0:
            # The answer of a late offer goes where the ACK goes.
            KSR.rtpengine.rtpengine_answer(self._flags(to_kind=self._callee_kind()))

    def handed_over(self):
        """A cluster: a request another node hands this one for a phone registered here. When the
        phone is behind NAT its Path carried its address, which loose_route made the next hop
        ($du): the branch is the NATed phone's, so that its replies' Contact gets the alias here,
        where the phone's NAT binding is. The other node relays the media."""
        if self.nat and KSR.pv.get("$du"):
            KSR.setbflag(BFLAG_NATED)

    def armed(self):
        """A call about to be relayed: its replies go through the media reply route."""
        if self.nat or self.rtpengine:
            KSR.tm.t_on_reply("ksr_reply_route_media")

    def force_relay(self):
        """Relay this call's media whatever the sides' addresses (the tenant asks for it)."""
        KSR.setflag(FLAG_RELAY_FORCED)

    def branch(self):
        """A branch of a call: offer its SDP to rtpengine when the call is relayed: a side is
        behind NAT, the two sides' media differ (RTP, SRTP, WebRTC), or the role relays every
        call."""
        if not self.rtpengine:
            return
        if not (self._nated() or self._caller_kind() != self._callee_kind()):
            return
        KSR.setbflag(BFLAG_RELAYED)
        KSR.rr.add_rr_param(";" + _RR_PARAM)
        KSR.pv.sets(_DIALOG_VAR, "1")
        if KSR.textops.has_body_type("application/sdp") > 0:
            KSR.rtpengine.rtpengine_offer(self._flags(offer=True))

    def failed(self):
        """The failure route (a branch failed, or the caller cancelled): drop the relay
        session; a forward in the failure route offers again."""
        if self.rtpengine and KSR.pv.get(_DIALOG_VAR) == "1":
            KSR.rtpengine.rtpengine_delete0()

    # Replies ----------------------------------------------------------------------------

    def reply(self, from_node=False):
        """A reply of a relayed call (tm onreply): the callee's Contact gets an alias when the
        callee is behind NAT, and rtpengine the answer SDP when the call is relayed. A reply
        another node of a cluster relays (``from_node``) has its alias from that node, and its
        source address is that node's, never the callee's media address."""
        if self.nat and not from_node and KSR.isbflagset(BFLAG_NATED) > 0 and KSR.pv.get("$hdr(Contact)"):
            KSR.nathelper.set_contact_alias()
        if self.rtpengine and KSR.isbflagset(BFLAG_RELAYED) > 0 \
                and KSR.textops.has_body_type("application/sdp") > 0:
            KSR.rtpengine.rtpengine_answer(self._flags(to_kind=self._caller_kind(), from_node=from_node))

    # ------------------------------------------------------------------------------------

    def _nated(self):
        return self.always or KSR.isflagset(FLAG_SOURCE_NATED) > 0 or KSR.isbflagset(BFLAG_NATED) > 0 \
            or KSR.isflagset(FLAG_RELAY_FORCED) > 0

    @staticmethod
    def _caller_kind():
        """The media kind of the request's sender: WebRTC over WebSocket, SRTP over TLS, else RTP.
        (In the tm reply route: of the request the reply answers, by its flags.)"""
        if KSR.isflagset(FLAG_SOURCE_WEBRTC) > 0:
            return WEBRTC
        return SRTP if (KSR.pv.get("$pr") or "").lower() == "tls" else RTP

    @staticmethod
    def _callee_kind():
        """The media kind of where this request goes: its next hop ($du, else the request URI)
        over WebSocket (Kamailio writes transport=ws for wss too) or TLS, else RTP."""
        uri = (KSR.pv.get("$du") or KSR.pv.get("$ru") or "").lower()
        if "transport=ws" in uri:
            return WEBRTC
        return SRTP if uri.startswith("sips:") or "transport=tls" in uri else RTP

    def _flags(self, offer=False, to_kind=None, from_node=False):
        """rtpengine flags: its own address in c= and o=; a sender whose SDP names a private
        address is sent media at its signalling source until its RTP arrives. The SDP is made
        for the side it goes to (an offer: the callee; an answer: ``to_kind``):
        WebRTC gets ICE, DTLS-SRTP, one port for RTP and RTCP and media ids, without SDES keys;
        SRTP phones RTP/SAVP with SDES keys; plain phones and trunks RTP/AVP. Whatever the sender
        offered, rtpengine converts. An answer keeps the offerer's own profile: a WebRTC offerer
        gets ICE again. The DTLS roles are left to rtpengine: it offers actpass (a browser answers
        active), and toward a WebRTC offerer it takes its role as soon as ICE completes, which
        may be before the answer (a role forced in the answer, DTLS=passive, then contradicts the
        handshake it started: the webphone's DTLS fails)."""
        flags = "replace-origin replace-session-connection"
        kind = self._callee_kind() if offer else to_kind
        if kind == WEBRTC:
            flags += " ICE=force"
            if offer:
                flags += (" transport-protocol=UDP/TLS/RTP/SAVPF rtcp-mux-offer rtcp-mux-require generate-mid"
                          " SDES-off")
        else:
            flags += " ICE=remove"
            if offer:
                # From a WebRTC caller: no DTLS, RTCP on its own port again.
                flags += " DTLS=off rtcp-mux-demux"
                if kind == SRTP:
                    # AES-CM with HMAC-SHA1 only: the AEAD-GCM suites rtpengine offers as well are
                    # keyed differently by some phones (baresip 1.0 cannot decrypt them).
                    flags += " transport-protocol=RTP/SAVP SDES-no-AEAD_AES_256_GCM SDES-no-AEAD_AES_128_GCM"
                else:
                    flags += " transport-protocol=RTP/AVP"
        if self.nat and not from_node and KSR.nathelper.nat_uac_test(_NAT_TEST_SDP) > 0:
            flags += " SIP-source-address"
        return flags
