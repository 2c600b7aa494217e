#!/usr/bin/python3
"""Drives aioxmpp (Debian python3-aioxmpp 0.13) clients for internal/capture.

Run by TestCaptureServers (servers_test.go) with ISTHMUS_CAPTURE_CLIENTS=aioxmpp as
    /usr/bin/python3 aioxmpp_driver.py CONFIG.json
CONFIG is the same as slixmpp_driver.py's: {"seed": 1, "duration": 90,
"sides": [{"domain": "ej.test", "addr": ["127.0.0.1", 5222],
"muc": "conference.ej.test", "users": {"alice": "pw", ...}}, {...}]}.

A third client library, held out from the codec's training: every stanza
is built by aioxmpp's own services and XSOs wherever it has them
(PresenceManagedClient and PresenceServer, RosterClient, DiscoServer and
DiscoClient, EntityCapsService computing XEP-0115 and XEP-0390 hashes,
VersionServer, PingService, MUCClient rooms, the im.p2p conversations,
PEPClient, AvatarService (PEP avatar, synchronised into the vCard),
VCardService, DeliveryReceiptsService and compose_receipt, carbons, chat
states, chat markers, corrections, origin-id, OOB). What aioxmpp lacks is
declared here as aioxmpp.xso classes, the way aioxmpp's own modules extend
Message: PEP nick, tune, mood and geoloc payloads, XEP-0202 time queries,
reactions, XHTML-IM, store hints, EME and OMEMO-like encrypted payloads.

Users log in and out again and again until the duration ends: presence
(show, status, priority, caps, vcard-update), subscriptions both ways,
chats with receipts, chat states, markers, corrections, reactions, OOB
links, XHTML-IM, encrypted payloads, long and multilingual texts; MUC rooms
on both servers (joins with history, room configuration, subject,
groupchat, private messages, nick changes, leaving); PEP; vCards with
photos; disco, version, time, ping. Messages to users who are logged out
are delivered offline.

C2S: aioxmpp's STARTTLS connector to the configured address, TLS not
required (tls_required=False) and, where a server offers STARTTLS, its
certificate (from the capture CA) not verified
(aioxmpp.make_security_layer(no_verify=True)). The test servers offer no
STARTTLS on C2S (what slixmpp_driver.py gets with disable_starttls), so
the clients log in over plain TCP with SASL SCRAM-SHA-1; aioxmpp never uses
PLAIN without TLS.

The choices come from random generators seeded by "seed" (the timing and
aioxmpp's and the servers' ids are not reproducible). A summary goes to
stderr.
"""

import asyncio
import base64
import json
import logging
import os
import random
import sys
import time

from lxml import etree

import aioxmpp
import aioxmpp.avatar
import aioxmpp.chatstates
import aioxmpp.connector
import aioxmpp.disco
import aioxmpp.dispatcher
import aioxmpp.entitycaps
import aioxmpp.im.p2p
import aioxmpp.mdr
import aioxmpp.misc
import aioxmpp.muc
import aioxmpp.muc.xso
import aioxmpp.pep
import aioxmpp.ping
import aioxmpp.pubsub
import aioxmpp.vcard
import aioxmpp.vcard.xso
import aioxmpp.version
import aioxmpp.xso as xso

# --- what aioxmpp has no XSO for, declared with aioxmpp.xso -----------------

NS_NICK = "http://jabber.org/protocol/nick"
NS_TUNE = "http://jabber.org/protocol/tune"
NS_MOOD = "http://jabber.org/protocol/mood"
NS_GEOLOC = "http://jabber.org/protocol/geoloc"
NS_REACTIONS = "urn:xmpp:reactions:0"
NS_AXOLOTL = "eu.siacs.conversations.axolotl"
NS_XHTML_IM = "http://jabber.org/protocol/xhtml-im"
NS_XHTML = "http://www.w3.org/1999/xhtml"

MOODS = ["happy", "tired", "busy", "relaxed", "stressed", "curious", "sleepy", "excited", "hungry", "calm"]


@aioxmpp.pubsub.xso.as_payload_class
class Nick(xso.XSO):
    TAG = (NS_NICK, "nick")
    text = xso.Text(default="")


@aioxmpp.pubsub.xso.as_payload_class
class Tune(xso.XSO):
    TAG = (NS_TUNE, "tune")
    artist = xso.ChildText((NS_TUNE, "artist"), default=None)
    length = xso.ChildText((NS_TUNE, "length"), default=None)
    source = xso.ChildText((NS_TUNE, "source"), default=None)
    title = xso.ChildText((NS_TUNE, "title"), default=None)
    track = xso.ChildText((NS_TUNE, "track"), default=None)


@aioxmpp.pubsub.xso.as_payload_class
class Mood(xso.XSO):
    TAG = (NS_MOOD, "mood")
    mood = xso.ChildTag([(NS_MOOD, m) for m in MOODS], allow_none=True)
    text = xso.ChildText((NS_MOOD, "text"), default=None)


@aioxmpp.pubsub.xso.as_payload_class
class Geoloc(xso.XSO):
    TAG = (NS_GEOLOC, "geoloc")
    accuracy = xso.ChildText((NS_GEOLOC, "accuracy"), default=None)
    lat = xso.ChildText((NS_GEOLOC, "lat"), default=None)
    lon = xso.ChildText((NS_GEOLOC, "lon"), default=None)
    timestamp = xso.ChildText((NS_GEOLOC, "timestamp"), default=None)


@aioxmpp.IQ.as_payload_class
class EntityTime(xso.XSO):
    TAG = ("urn:xmpp:time", "time")
    tzo = xso.ChildText(("urn:xmpp:time", "tzo"), default=None)
    utc = xso.ChildText(("urn:xmpp:time", "utc"), default=None)


class Reaction(xso.XSO):
    TAG = (NS_REACTIONS, "reaction")
    text = xso.Text(default="")


class Reactions(xso.XSO):
    TAG = (NS_REACTIONS, "reactions")
    id_ = xso.Attr("id")
    reactions = xso.ChildList([Reaction])


class AxolotlKey(xso.XSO):
    TAG = (NS_AXOLOTL, "key")
    rid = xso.Attr("rid", type_=xso.Integer())
    prekey = xso.Attr("prekey", type_=xso.Bool(), default=False)
    data = xso.Text(type_=xso.Base64Binary(), default=b"")


class AxolotlIV(xso.XSO):
    TAG = (NS_AXOLOTL, "iv")
    data = xso.Text(type_=xso.Base64Binary(), default=b"")


class AxolotlHeader(xso.XSO):
    TAG = (NS_AXOLOTL, "header")
    sid = xso.Attr("sid", type_=xso.Integer())
    keys = xso.ChildList([AxolotlKey])
    iv = xso.Child([AxolotlIV])


class AxolotlPayload(xso.XSO):
    TAG = (NS_AXOLOTL, "payload")
    data = xso.Text(type_=xso.Base64Binary(), default=b"")


class AxolotlEncrypted(xso.XSO):
    TAG = (NS_AXOLOTL, "encrypted")
    header = xso.Child([AxolotlHeader])
    payload = xso.Child([AxolotlPayload])


class EME(xso.XSO):
    TAG = ("urn:xmpp:eme:0", "encryption")
    namespace = xso.Attr("namespace")
    name = xso.Attr("name", default=None)


class XHTMLBody(xso.XSO):
    TAG = (NS_XHTML, "body")
    contents = xso.Collector()


class XHTMLIM(xso.XSO):
    TAG = (NS_XHTML_IM, "html")
    bodies = xso.ChildList([XHTMLBody])


aioxmpp.Message.xep0444_reactions = xso.Child([Reactions])
aioxmpp.Message.xep0384_encrypted = xso.Child([AxolotlEncrypted])
aioxmpp.Message.xep0380_eme = xso.Child([EME])
aioxmpp.Message.xep0071_html = xso.Child([XHTMLIM])
aioxmpp.Message.xep0334_store = xso.ChildFlag(("urn:xmpp:hints", "store"))

# --- the world ----------------------------------------------------------------

# Client profiles: identity type, client name, whether the server picks the
# resource. aioxmpp has no way to set the caps node (EntityCapsService.NODE,
# and services cannot be subclassed): every aioxmpp client announces
# http://aioxmpp.zombofant.net/, with a hash over its own identity and
# features, in both XEP-0115 <c/> and XEP-0390 <c xmlns='urn:xmpp:caps'/>.
PROFILES = [
    ("pc", "aioxmpp", True),
    ("pc", "JabberCat", False),
    ("pc", "Kaidan", False),
    ("phone", "Quicksy", True),
    ("console", "Profanity", False),
    ("phone", "blabber.im", True),
    ("pc", "BeagleIM", False),
    ("web", "Converse", True),
    ("pc", "Pidgin", False),
    ("pc", "Swift", False),
]

FEATURES = [
    "http://jabber.org/protocol/chatstates", "urn:xmpp:chat-markers:0", "urn:xmpp:message-correct:0",
    "urn:xmpp:sid:0", "jabber:x:oob", "urn:xmpp:reactions:0", "http://jabber.org/protocol/xhtml-im",
    "urn:xmpp:time", "eu.siacs.conversations.axolotl.devicelist+notify",
]

TEXTS = [
    "yes", "no problem", "sure", "🙂", "brb", "done ✅", "see you", "nice!", "hmm", "on it",
    "Did the new charts arrive with the last delivery?",
    "The generator test is scheduled for tomorrow morning.",
    "Fog on the approach, we are holding position for now.",
    "Can you send me the fuel figures before 1800 UTC?",
    "Reminder: crew change at the next port, papers are in the office.",
    "Wind 20 kn from the SW, 2 m swell, all secured <deck & cargo>.",
    "Salut ! Tu as reçu les documents pour l'escale ?",
    "Hallo zusammen, das Meeting beginnt in zehn Minuten.",
    "Hola, el barco llega mañana a las siete.",
    "Ciao, il pacco è arrivato stamattina.",
    "Привет! Отправь, пожалуйста, обновлённый график вахт.",
    "お疲れ様です。明日の予定を確認してください。",
    "请把最新的天气预报发给我。",
    "أين وصلت السفينة الآن؟",
    "תודה רבה, קיבלתי את ההודעה.",
    "Γεια σου! Τα λέμε αύριο στο λιμάνι.",
    "धन्यवाद, मैं कल सुबह फोन करूँगा।",
    "Cảm ơn, tôi đã nhận được tài liệu.",
    "감사합니다, 내일 항구에서 봬요.",
    "Obrigado! Chegamos ao porto às oito.",
    "Hej! Vi ses i hamnen i morgon bitti.",
    "Merhaba, yük teslim edildi mi?",
]

LONG = (
    "Noon report. Position 47°33'N 006°12'W, course 041, speed 12.4 kn. "
    "Weather: wind W 4, sea slight, barometer steady at 1018 hPa. "
    "Machinery: all normal, purifier 1 cleaned, boiler water tested. "
    "Cargo: hold ventilation running, temperatures logged at 0800 and 1200. "
    "Safety: fire drill completed, one extinguisher replaced in the galley. "
    "ETA pilot station 0415 tomorrow; please confirm berth and tug order. "
    "Rapport de midi : rien à signaler. Mittagsbericht: keine Besonderheiten. "
    "正午报告：一切正常。"
)

STATUSES = [
    "On the bridge", "Sleeping, wake me for emergencies", "Lunch break 🥪", "Busy with cargo",
    "Around", "Watch 0-4", "Do not disturb", "À bord", "An Deck", "На вахте", "当直中", "Offline soon",
]

TUNES = [
    ("Pink Floyd", "Time", "The Dark Side of the Moon", 413), ("Daft Punk", "Da Funk", "Homework", 328),
    ("Ali Farka Touré", "Diaraby", "Talking Timbuktu", 445), ("Nina Simone", "Sinnerman", "Pastel Blues", 622),
    ("Sigur Rós", "Hoppípolla", "Takk...", 268),
]

ROOMS = ["deck", "bridge", "engine-room", "mess", "cargo"]
SUBJECTS = ["Shift plan for this week", "Quiet hours after 2200", "Bienvenue à bord", "Wartungsplan",
            "Учения в пятницу", "Cargo ops only"]


def picture(r, n):
    """Bytes that look like a small PNG (header, then noise)."""
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + r.randbytes(n)


class Stats:
    def __init__(self):
        self.actions = {}
        self.errors = 0
        self.sessions = 0

    def add(self, k):
        self.actions[k] = self.actions.get(k, 0) + 1


class User:
    def __init__(self, world, side, name, password, r):
        self.w = world
        self.side = side
        self.name = name
        self.password = password
        self.r = r
        self.domain = world.sides[side]["domain"]
        self.bare = aioxmpp.JID(name, self.domain, None)
        self.profile = PROFILES[r.randrange(len(PROFILES))]
        self.version = "%d.%d.%d" % (r.randint(0, 3), r.randint(0, 30), r.randint(0, 12))
        self.avatar = picture(r, r.randint(1000, 4000)) if r.random() < 0.7 else None
        self.tzo = r.choice(["+00:00", "+01:00", "-05:00", "+09:00", "+05:30", "-03:00"])
        self.subscribed = False
        self.client = None
        self.rooms = {}  # room JID -> aioxmpp.muc.Room
        self.received = []  # (from, id) of received chat messages
        self.sent = []  # (to, id) of our chat messages
        self.avatars_seen = set()  # avatar ids fetched (the client's cache)
        self.vcards_seen = set()  # contacts whose vCard was fetched

    def remotes(self):
        return self.w.bare[1 - self.side]

    def remote(self):
        return self.r.choice(self.remotes())

    def new_client(self):
        itype, cname, server_resource = self.profile
        jid = self.bare
        if not server_resource:
            jid = jid.replace(resource="%s.%s" % (cname.split(".")[0].lower(),
                                                  base64.b32encode(self.r.randbytes(5)).decode().lower()))
        host, port = self.w.sides[self.side]["addr"]
        security = aioxmpp.make_security_layer(self.password, no_verify=True)._replace(tls_required=False)
        c = aioxmpp.PresenceManagedClient(
            jid, security, override_peer=[(host, port, aioxmpp.connector.STARTTLSConnector())],
            max_initial_attempts=1, logger=logging.getLogger("client.%s" % self.name))

        disco = c.summon(aioxmpp.DiscoServer)
        disco.register_identity("client", itype, names={aioxmpp.structs.LanguageTag.fromstr("en"): cname})
        disco.unregister_identity("client", "bot")  # aioxmpp's default identity
        for f in FEATURES:
            disco.register_feature(f)
        c.summon(aioxmpp.EntityCapsService)
        v = c.summon(aioxmpp.version.VersionServer)
        v.name, v.version = cname, self.version
        v.os = self.r.choice([None, "Linux", "Android", "Windows", "macOS"])
        c.summon(aioxmpp.PingService)
        c.summon(aioxmpp.mdr.DeliveryReceiptsService)
        roster = c.summon(aioxmpp.RosterClient)
        roster.on_subscribe.connect(self.on_subscribe)
        c.summon(aioxmpp.PresenceClient)
        c.summon(aioxmpp.MUCClient)
        c.summon(aioxmpp.im.p2p.Service)
        pep = c.summon(aioxmpp.PEPClient)
        self.pep_claims = [pep.claim_pep_node(ns, notify=True) for ns in (NS_NICK, NS_TUNE, NS_MOOD, NS_GEOLOC)]
        avatar = c.summon(aioxmpp.avatar.AvatarService)
        avatar.on_metadata_changed.connect(self.on_avatar)
        c.summon(aioxmpp.vcard.VCardService)
        c.stream.register_iq_request_handler(aioxmpp.IQType.GET, EntityTime, self.on_time)
        d = c.summon(aioxmpp.dispatcher.SimpleMessageDispatcher)
        d.register_callback(aioxmpp.MessageType.CHAT, None, self.on_message)
        d.register_callback(aioxmpp.MessageType.NORMAL, None, self.on_message)
        return c

    def svc(self, cls):
        return self.client.summon(cls)

    def on_subscribe(self, st):
        # Accept, and ask back if we have not yet (as clients do).
        roster = self.svc(aioxmpp.RosterClient)
        roster.approve(st.from_.bare())
        item = roster.items.get(st.from_.bare())
        if item is None or (item.subscription in ("none", "from") and not item.ask):
            roster.subscribe(st.from_.bare())

    def on_message(self, msg):
        if not msg.body or msg.from_ is None:
            return
        c = self.client
        if msg.xep0184_request_receipt and msg.id_:
            try:
                c.enqueue(aioxmpp.mdr.compose_receipt(msg))
            except ValueError:
                pass
        self.received.append((msg.from_, msg.id_))
        del self.received[:-20]
        if msg.xep0333_markable and msg.id_ and self.r.random() < 0.6:
            m = aioxmpp.Message(type_=aioxmpp.MessageType.CHAT, to=msg.from_.bare())
            marker = aioxmpp.misc.DisplayedMarker()
            marker.id_ = msg.id_
            m.xep0333_marker = marker
            m.xep0334_store = True
            c.enqueue(m)

    async def on_time(self, _iq):
        t = EntityTime()
        t.tzo = self.tzo
        t.utc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return t

    def on_avatar(self, jid, metadata):
        # Clients cache avatars by hash: each is fetched once per user.
        for desc in metadata:
            if desc.can_get_image_bytes_via_xmpp and desc.normalized_id not in self.avatars_seen:
                self.avatars_seen.add(desc.normalized_id)
                self.w.spawn(self.call("avatar-fetch", desc.get_image_bytes()))
                return

    async def call(self, kind, coro):
        try:
            await asyncio.wait_for(coro, 15)
            self.w.stats.add(kind)
        except (aioxmpp.errors.XMPPError, asyncio.TimeoutError):
            self.w.stats.add(kind + "-error")
        except Exception as e:  # the client went away
            self.w.stats.errors += 1
            logging.info("%s %s: %r", self.bare, kind, e)

    async def run(self, deadline):
        loop = asyncio.get_running_loop()
        while time.monotonic() < deadline - 5:
            self.client = self.new_client()
            up = loop.create_future()
            self.client.on_stream_established.connect(lambda: up.done() or up.set_result(True))
            self.client.on_failure.connect(lambda e: up.done() or up.set_exception(e))
            self.set_presence()  # available: PresenceManagedClient connects
            try:
                await asyncio.wait_for(up, 20)
            except Exception as e:
                self.w.stats.errors += 1
                logging.warning("%s: login: %r", self.bare, e)
                self.client.stop()
                self.client = None
                await asyncio.sleep(2)
                continue
            self.w.stats.sessions += 1
            self.w.full[str(self.bare)] = self.client.local_jid
            try:
                await self.session(deadline, self.r.randint(10, 60))
            except Exception as e:
                self.w.stats.errors += 1
                logging.warning("%s: %r", self.bare, e)
            self.w.full.pop(str(self.bare), None)
            for room in list(self.rooms.values()):
                if self.r.random() < 0.5:
                    await self.call("muc-leave", room.leave())
            self.rooms.clear()
            stopped = loop.create_future()
            self.client.on_stopped.connect(lambda: stopped.done() or stopped.set_result(True))
            self.client.on_failure.connect(lambda e: stopped.done() or stopped.set_result(True))
            self.svc(aioxmpp.PresenceServer).set_presence(aioxmpp.PresenceState(False))
            try:
                await asyncio.wait_for(stopped, 5)
            except asyncio.TimeoutError:
                self.w.stats.errors += 1
            self.client = None
            await asyncio.sleep(self.r.uniform(1, 8))

    def set_presence(self):
        show = self.r.choice([aioxmpp.PresenceShow.NONE, aioxmpp.PresenceShow.NONE, aioxmpp.PresenceShow.AWAY,
                              aioxmpp.PresenceShow.XA, aioxmpp.PresenceShow.DND, aioxmpp.PresenceShow.CHAT])
        status = self.r.choice(STATUSES) if self.r.random() < 0.6 else {}
        self.svc(aioxmpp.PresenceServer).set_presence(
            aioxmpp.PresenceState(True, show), status=status, priority=self.r.choice([0, 1, 5, 10, 50]))

    async def session(self, deadline, n):
        roster = self.svc(aioxmpp.RosterClient)
        if not self.subscribed:
            self.subscribed = True
            for b in self.remotes():
                roster.subscribe(b)
        if self.avatar is not None and self.r.random() < 0.5:
            aset = aioxmpp.avatar.AvatarSet()
            aset.add_avatar_image("image/png", image_bytes=self.avatar, width=96, height=96)
            await self.call("avatar-publish", self.svc(aioxmpp.avatar.AvatarService).publish_avatar_set(aset))
        for _ in range(n):
            if time.monotonic() > deadline:
                return
            await asyncio.sleep(self.r.uniform(0.2, 1.2))
            if not self.client.established:
                self.w.stats.add("stream-lost")
                return
            try:
                await self.action()
            except Exception as e:
                self.w.stats.errors += 1
                self.w.stats.add("exception-" + type(e).__name__)
                logging.info("%s: %r", self.bare, e, exc_info=True)

    async def action(self):
        k = self.r.random()
        if k < 0.30:
            await self.chat()
        elif k < 0.38:
            self.extra_message()
        elif k < 0.44:
            self.set_presence()
            self.w.stats.add("presence")
        elif k < 0.62:
            await self.muc()
        elif k < 0.72:
            await self.pep()
        elif k < 0.78 and len(self.vcards_seen) < len(self.remotes()):
            # Clients cache vCards: each contact's is fetched once.
            b = self.r.choice([b for b in self.remotes() if b not in self.vcards_seen])
            self.vcards_seen.add(b)
            await self.call("vcard-get", self.svc(aioxmpp.vcard.VCardService).get_vcard(b))
        elif k < 0.80:
            await self.vcard_set()
        else:
            await self.query()

    def to(self):
        b = self.remote()
        f = self.w.full.get(str(b))
        return f if f and self.r.random() < 0.5 else b

    def conversation(self, jid):
        return self.svc(aioxmpp.im.p2p.Service).get_conversation(jid)

    async def chat(self):
        to = self.to()
        conv = self.conversation(to)
        if self.r.random() < 0.5:
            m = aioxmpp.Message(type_=aioxmpp.MessageType.CHAT)
            m.xep0085_chatstate = aioxmpp.chatstates.ChatState.COMPOSING
            conv.send_message(m)
            await asyncio.sleep(self.r.uniform(0.2, 1.5))
            if self.r.random() < 0.15:
                m = aioxmpp.Message(type_=aioxmpp.MessageType.CHAT)
                m.xep0085_chatstate = aioxmpp.chatstates.ChatState.PAUSED
                conv.send_message(m)
                await asyncio.sleep(self.r.uniform(0.2, 1.0))
        if self.r.random() < 0.08:
            body = LONG
        else:
            body = " ".join(self.r.choice(TEXTS) for _ in range(self.r.randint(1, 3)))
        m = aioxmpp.Message(type_=aioxmpp.MessageType.CHAT)
        m.autoset_id()
        m.xep0085_chatstate = aioxmpp.chatstates.ChatState.ACTIVE
        m.to = to
        self.svc(aioxmpp.mdr.DeliveryReceiptsService).attach_tracker(m)
        if self.r.random() < 0.7:
            m.xep0333_markable = True
            m.xep0359_origin_id = aioxmpp.misc.OriginID(m.id_)
        if self.r.random() < 0.08:
            url = "https://share.%s/%s/%s.png" % (self.domain, base64.b32encode(self.r.randbytes(10)).decode().lower(),
                                                  self.r.choice(["screenshot", "IMG_0815", "plan", "Foto"]))
            body = url
            m.xep0066_oob = aioxmpp.misc.OOBExtension()
            m.xep0066_oob.url = url
        elif self.r.random() < 0.1:
            p = etree.Element("{%s}p" % NS_XHTML)
            e = etree.SubElement(p, "{%s}em" % NS_XHTML)
            e.text = body
            html, hb = XHTMLIM(), XHTMLBody()
            hb.contents.append(p)
            html.bodies.append(hb)
            m.xep0071_html = html
        m.body[None] = body
        conv.send_message(m)
        self.sent.append((to, m.id_))
        del self.sent[:-10]
        self.w.stats.add("chat")

    def extra_message(self):
        k = self.r.random()
        if k < 0.3 and self.sent:
            to, mid = self.sent[-1]
            m = aioxmpp.Message(type_=aioxmpp.MessageType.CHAT)
            m.body[None] = self.r.choice(TEXTS) + " *"
            m.xep0308_replace = aioxmpp.misc.Replace()
            m.xep0308_replace.id_ = mid
            m.xep0085_chatstate = aioxmpp.chatstates.ChatState.ACTIVE
            self.conversation(to).send_message(m)
            self.w.stats.add("correction")
        elif k < 0.55 and self.received:
            frm, mid = self.r.choice(self.received)
            m = aioxmpp.Message(type_=aioxmpp.MessageType.CHAT)
            rs = Reactions()
            rs.id_ = mid
            for e in self.r.sample(["👍", "❤️", "😂", "😮", "🙏", "🔥"], self.r.randint(1, 2)):
                rr = Reaction()
                rr.text = e
                rs.reactions.append(rr)
            m.xep0444_reactions = rs
            m.xep0334_store = True
            self.conversation(frm.bare()).send_message(m)
            self.w.stats.add("reaction")
        else:
            m = aioxmpp.Message(type_=aioxmpp.MessageType.CHAT)
            m.body[None] = ("I sent you an OMEMO encrypted message but your client doesn't seem to support that. "
                            "Find more information on https://conversations.im/omemo")
            enc, h = AxolotlEncrypted(), AxolotlHeader()
            h.sid = self.r.randrange(1, 1 << 31)
            for _ in range(self.r.randint(1, 4)):
                key = AxolotlKey()
                key.rid = self.r.randrange(1, 1 << 31)
                key.prekey = self.r.random() < 0.1
                key.data = self.r.randbytes(self.r.choice([48, 56, 72]))
                h.keys.append(key)
            h.iv = AxolotlIV()
            h.iv.data = self.r.randbytes(12)
            enc.header = h
            enc.payload = AxolotlPayload()
            enc.payload.data = self.r.randbytes(self.r.randint(8, 400))
            m.xep0384_encrypted = enc
            m.xep0380_eme = EME()
            m.xep0380_eme.namespace, m.xep0380_eme.name = NS_AXOLOTL, "OMEMO"
            m.xep0334_store = True
            m.xep0333_markable = True
            self.conversation(self.to()).send_message(m)
            self.w.stats.add("omemo")

    async def muc(self):
        mucs = self.svc(aioxmpp.MUCClient)
        if not self.rooms or (len(self.rooms) < 3 and self.r.random() < 0.15):
            # Rooms on ejabberd are created by its own users only.
            svc = self.w.sides[self.side if self.r.random() < 0.5 else 1 - self.side]["muc"]
            jid = aioxmpp.JID.fromstr("%s@%s" % (self.r.choice(ROOMS), svc))
            if jid in self.rooms:
                return
            nick = self.name.capitalize() if self.r.random() < 0.7 else "%s (%s)" % (self.name, self.profile[1])
            codes = set()
            room, fut = mucs.join(jid, nick, history=aioxmpp.muc.xso.History(maxstanzas=self.r.choice([0, 5, 20])),
                                  autorejoin=False)
            room.on_muc_enter.connect(lambda _p, _o, muc_status_codes=set(), **_kw: codes.update(muc_status_codes))
            try:
                await asyncio.wait_for(fut, 20)
            except Exception as e:
                self.w.stats.add("muc-join-error")
                logging.debug("%s join %s: %r", self.bare, jid, e)
                return
            self.rooms[jid] = room
            self.w.stats.add("muc-join")
            if aioxmpp.muc.xso.StatusCode.CREATED in codes or self.r.random() < 0.05:
                await self.call("muc-config", self.configure(jid))
                await self.call("muc-subject", room.set_topic({None: self.r.choice(SUBJECTS)}))
            return
        jid = self.r.choice(sorted(self.rooms, key=str))
        room = self.rooms[jid]
        if not room.muc_active:
            del self.rooms[jid]
            return
        k = self.r.random()
        if k < 0.75:
            m = aioxmpp.Message(type_=aioxmpp.MessageType.GROUPCHAT)
            m.body[None] = " ".join(self.r.choice(TEXTS) for _ in range(self.r.randint(1, 2)))
            m.autoset_id()
            if self.r.random() < 0.5:
                m.xep0359_origin_id = aioxmpp.misc.OriginID(m.id_)
            if self.r.random() < 0.5:
                m.xep0333_markable = True
            room.send_message(m)
            self.w.stats.add("groupchat")
        elif k < 0.85:
            others = [mb for mb in room.members if mb is not room.me and mb.nick]
            if others:
                mb = self.r.choice(others)
                m = aioxmpp.Message(type_=aioxmpp.MessageType.CHAT, to=mb.conversation_jid)
                m.body[None] = self.r.choice(TEXTS)
                m.xep0045_muc_user = aioxmpp.muc.xso.UserExt()
                self.client.enqueue(m)
                self.w.stats.add("muc-pm")
        elif k < 0.93:
            await self.call("muc-nick", room.set_nick((room.me.nick if room.me else self.name) + self.r.choice(["_", " 📱", "|afk", "2"])))
        elif k < 0.97:
            await self.call("muc-subject", room.set_topic({None: self.r.choice(SUBJECTS)}))
        else:
            del self.rooms[jid]
            await self.call("muc-leave", room.leave())

    async def configure(self, jid):
        mucs = self.svc(aioxmpp.MUCClient)
        form = aioxmpp.muc.ConfigurationForm.from_xso(await mucs.get_room_config(jid))
        form.roomname.value = jid.localpart.title()
        form.roomdesc.value = "Room for the %s team" % jid.localpart
        form.persistentroom.value = True
        form.publicroom.value = True
        await mucs.set_room_config(jid, form.render_reply())

    async def pep(self):
        pep = self.svc(aioxmpp.PEPClient)
        k = self.r.randrange(5)
        if k == 0:
            n = Nick()
            n.text = self.name.capitalize() + self.r.choice(["", " ⚓", " (shore)", " K."])
            await self.call("pep-nick", pep.publish(NS_NICK, n))
        elif k == 1:
            a, t, s, n = self.r.choice(TUNES)
            tune = Tune()
            tune.artist, tune.title, tune.source, tune.length, tune.track = a, t, s, str(n), str(self.r.randint(1, 12))
            await self.call("pep-tune", pep.publish(NS_TUNE, tune, id_="current"))
        elif k == 2:
            mood = Mood()
            mood.mood = (NS_MOOD, self.r.choice(MOODS))
            mood.text = self.r.choice([None, "busy day", "finally some sun", "bof"])
            await self.call("pep-mood", pep.publish(NS_MOOD, mood, id_="current"))
        elif k == 3:
            g = Geoloc()
            g.lat, g.lon = "%.4f" % self.r.uniform(-60, 60), "%.4f" % self.r.uniform(-180, 180)
            g.accuracy = self.r.choice(["5", "30", "500"])
            g.timestamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            await self.call("pep-geoloc", pep.publish(NS_GEOLOC, g, id_="current"))
        else:
            aset = aioxmpp.avatar.AvatarSet()
            aset.add_avatar_image("image/png", image_bytes=picture(self.r, self.r.randint(1000, 4000)), width=64, height=64)
            await self.call("avatar-publish", self.svc(aioxmpp.avatar.AvatarService).publish_avatar_set(aset))

    async def vcard_set(self):
        vc = aioxmpp.vcard.xso.VCard()
        for tag, text in (("FN", "%s %s" % (self.name.capitalize(), self.r.choice(["Example", "Test", "Doe"]))),
                          ("NICKNAME", self.name), ("TITLE", self.r.choice(["Second Officer", "Engineer", "Cook", "Bosun"]))):
            etree.SubElement(vc.elements, "{vcard-temp}" + tag).text = text
        vc.set_photo_data("image/png", picture(self.r, self.r.randint(1500, 4000)))
        await self.call("vcard-set", self.svc(aioxmpp.vcard.VCardService).set_vcard(vc))

    async def query(self):
        other = self.w.sides[1 - self.side]
        dom = aioxmpp.JID.fromstr(other["domain"])
        full = self.w.full.get(str(self.remote()))
        disco = self.svc(aioxmpp.DiscoClient)
        k = self.r.randrange(9)
        if k == 0:
            await self.call("disco-info", disco.query_info(dom, require_fresh=True))
        elif k == 1:
            await self.call("disco-items", disco.query_items(self.r.choice([dom, aioxmpp.JID.fromstr(other["muc"])]), require_fresh=True))
        elif k == 2 and full:
            await self.call("disco-info-client", disco.query_info(full, require_fresh=True))
        elif k == 3:
            await self.call("version", aioxmpp.version.query_version(self.client.stream, full or dom))
        elif k == 4:
            iq = aioxmpp.IQ(type_=aioxmpp.IQType.GET, to=full or dom, payload=EntityTime())
            await self.call("time", self.client.send(iq))
        elif k == 5:
            room = aioxmpp.JID.fromstr("%s@%s" % (self.r.choice(ROOMS), other["muc"]))
            await self.call("disco-info-muc", disco.query_info(room, require_fresh=True))
        else:
            await self.call("ping", aioxmpp.ping.ping(self.client, full or dom))


class World:
    def __init__(self, cfg):
        self.sides = cfg["sides"]
        self.stats = Stats()
        self.full = {}  # bare JID -> full JID of logged-in users
        self.tasks = set()
        self.bare = [[aioxmpp.JID(u, s["domain"], None) for u in sorted(s["users"])] for s in self.sides]

    def spawn(self, coro):
        t = asyncio.ensure_future(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)


async def main(cfg):
    w = World(cfg)
    seed = cfg["seed"]
    deadline = time.monotonic() + cfg["duration"]
    users = []
    for side, s in enumerate(cfg["sides"]):
        for i, name in enumerate(sorted(s["users"])):
            users.append(User(w, side, name, s["users"][name], random.Random(seed * 1000 + side * 100 + i)))

    async def staggered(u, i):
        await asyncio.sleep(0.3 * i)
        await u.run(deadline)

    await asyncio.gather(*[staggered(u, i) for i, u in enumerate(users)])
    if w.tasks:
        await asyncio.wait(w.tasks, timeout=5)
    print("aioxmpp driver: %d sessions, %d errors, actions %s" % (
        w.stats.sessions, w.stats.errors, json.dumps(dict(sorted(w.stats.actions.items())))), file=sys.stderr)


if __name__ == "__main__":
    # ISTHMUS_DRIVER_LOG=INFO (or DEBUG, WARNING) to see what the clients do.
    logging.basicConfig(level=os.environ.get("ISTHMUS_DRIVER_LOG", "CRITICAL"),
                        format="%(levelname)s %(name)s %(message)s")
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    asyncio.run(main(cfg))
