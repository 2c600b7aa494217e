#!/usr/bin/python3
"""Drives slixmpp (Debian python3-slixmpp 1.8) clients for internal/capture.

Run by TestCaptureServers (capture_servers_test.go) as
    /usr/bin/python3 slixmpp_driver.py CONFIG.json
CONFIG: {"seed": 1, "duration": 90, "sides": [{"domain": "ej.test",
"addr": ["127.0.0.1", 5222], "muc": "conference.ej.test",
"users": {"alice": "pw", ...}}, {...}]}.

Every user logs in and out again and again until the duration ends and
does what people do with a client on the other side of the S2S link:
subscriptions, presence with caps and vcard-update, chats with receipts,
chat states, markers, origin-id, corrections, reactions, XHTML-IM, OOB
links, OMEMO-like encrypted payloads, long and multilingual texts; MUC
rooms on both servers (joins with history, subject, groupchat, private
messages, nick changes, room configuration); PEP (nick, avatar metadata and
data, tune, mood, geoloc); vCards with photos; disco, version, time, ping.
Messages to users who are logged out are delivered offline.

The choices come from random generators seeded by "seed" (the timing and
the servers' ids are not reproducible). A summary goes to stderr.
"""

import asyncio
import base64
import hashlib
import json
import logging
import random
import sys
import time
from xml.sax.saxutils import escape

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream import ET

PROFILES = [
    # caps node, identity type, client name: slixmpp computes the caps hash
    ("https://slixmpp.com/", "pc", "slixmpp"),
    ("https://poez.io", "console", "Poezio"),
    ("http://conversations.im", "phone", "Conversations"),
    ("https://gajim.org", "pc", "Gajim"),
    ("https://dino.im", "pc", "Dino"),
    ("https://monal-im.org", "phone", "Monal"),
    ("http://psi-im.org", "pc", "Psi"),
    ("https://movim.eu/", "web", "Movim"),
    ("https://siskin.im", "phone", "Siskin IM"),
    ("https://cheogram.com", "phone", "Cheogram"),
]

TEXTS = [
    "ok", "thanks!", "👍", "on my way", "roger", "copy that", "lol", "good night 🌙",
    "Are you around this afternoon?",
    "The weather report says the wind will pick up after midnight.",
    "We should arrive at the anchorage around 0600 local time.",
    "Position at noon: 54°21'N 010°09'E, course 275, speed 11 knots.",
    "Please remember to sign the safety checklist & return it by Friday <before noon>.",
    "Bonjour à tous, la réunion est déplacée à 15 h.",
    "Guten Morgen! Die Ersatzteile sind endlich angekommen.",
    "¿Alguien sabe cuándo llega el próximo suministro de combustible?",
    "Доброе утро! Связь через спутник снова работает.",
    "今日の午後は会議がありますか？",
    "船上一切正常，明天早上抵达港口。",
    "مرحبا، هل وصلت الشحنة؟",
    "שלום, אני בדרך לנמל.",
    "Καλημέρα! Ο καιρός είναι καλός σήμερα.",
    "नमस्ते, क्या आप आज शाम को उपलब्ध हैं?",
    "Xin chào, tàu sẽ cập cảng lúc 6 giờ sáng.",
    "안녕하세요, 회의는 내일 오전으로 연기되었습니다.",
    "Olá! Tudo bem por aí? Mandei as fotos por e-mail.",
    "Hei! Kaikki hyvin täällä, tuuli on heikentynyt.",
    "Cześć, czy możesz przesłać mi zaktualizowaną listę załogi?",
]

LONG = (
    "Daily report. Weather: wind NW 5-6, sea state 4, visibility good. "
    "Engine: main engine running at 82% MCR, no alarms; generator 2 under "
    "maintenance until 1600. Cargo: all reefers within limits, one container "
    "re-stowed after the night check. Crew: all well, drill held at 1030 "
    "(abandon ship, muster complete in 4 min). Next port ETA 0600 tomorrow, "
    "pilot ordered for 0530. Please confirm the bunker order and the agent's "
    "contact details. Rapport quotidien : tout va bien à bord. "
    "Tagesbericht: alles in Ordnung. 日報：異常なし。"
)

STATUSES = [
    "On watch until 0400", "In a meeting", "At lunch 🍲", "Back soon", "Available",
    "Off duty", "Only urgent messages please", "En mer", "Auf See", "В пути", "航海中",
]

TUNES = [
    ("Yes", "Roundabout", "Fragile", 509), ("Kraftwerk", "Autobahn", "Autobahn", 1367),
    ("Fela Kuti", "Water No Get Enemy", "Expensive Shit", 591),
    ("Miles Davis", "So What", "Kind of Blue", 562), ("Björk", "Jóga", "Homogenic", 305),
]

MOODS = ["happy", "tired", "busy", "relaxed", "stressed", "curious", "sleepy", "excited"]

ROOMS = ["deck", "bridge", "engine-room", "mess"]


def omemo_like(r, sid, rids):
    keys = "".join(
        "<key rid='%d'%s>%s</key>" % (rid, " prekey='true'" if r.random() < 0.1 else "",
                                       base64.b64encode(r.randbytes(r.choice([48, 56, 72]))).decode())
        for rid in rids)
    return ("<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='%d'>%s<iv>%s</iv></header>"
            "<payload>%s</payload></encrypted>") % (
        sid, keys, base64.b64encode(r.randbytes(12)).decode(),
        base64.b64encode(r.randbytes(r.randint(8, 400))).decode())


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
        self.bare = "%s@%s" % (name, world.sides[side]["domain"])
        self.profile = PROFILES[r.randrange(len(PROFILES))]
        self.avatar = picture(r, r.randint(1000, 4000)) if r.random() < 0.7 else None
        self.subscribed = False
        self.xmpp = None
        self.rooms = {}  # room JID -> nick
        self.received = []  # (from, id) of received chat messages
        self.sent = []  # (to, id) of our chat messages
        self.avatars_seen = set()  # ids of avatars fetched (the client's cache)
        self.vcards_seen = set()  # contacts whose vCard was fetched

    def remotes(self):
        return self.w.bare[1 - self.side]

    def remote(self):
        return self.r.choice(self.remotes())

    def new_client(self):
        x = slixmpp.ClientXMPP(self.bare + "/" + self.profile[2].split()[0].lower() + "-" + "%04x" % self.r.randrange(1 << 16), self.password)
        for p in ["xep_0030", "xep_0115", "xep_0045", "xep_0054", "xep_0153", "xep_0163", "xep_0084",
                  "xep_0172", "xep_0118", "xep_0107", "xep_0080", "xep_0184", "xep_0085", "xep_0333",
                  "xep_0308", "xep_0444", "xep_0071", "xep_0066", "xep_0199", "xep_0092", "xep_0202",
                  "xep_0359", "xep_0334", "xep_0380", "xep_0060"]:
            x.register_plugin(p)
        x["xep_0115"].caps_node = self.profile[0]
        x["xep_0030"].add_identity(category="client", itype=self.profile[1], name=self.profile[2])
        x["xep_0092"].software_name = self.profile[2]
        x["xep_0092"].version = "%d.%d.%d" % (self.r.randint(0, 5), self.r.randint(0, 20), self.r.randint(0, 9))
        x["xep_0184"].auto_request = True
        x["xep_0184"].auto_ack = True
        # PEP notifications the client wants (+notify in caps).
        for ns in ["http://jabber.org/protocol/nick", "http://jabber.org/protocol/tune",
                   "http://jabber.org/protocol/mood", "http://jabber.org/protocol/geoloc",
                   "urn:xmpp:avatar:metadata"]:
            x["xep_0163"].add_interest(ns)
        x.add_event_handler("message", self.on_message)
        x.add_event_handler("avatar_metadata_publish", self.on_avatar)
        return x

    def on_message(self, msg):
        if msg["type"] not in ("chat", "normal") or not msg["body"]:
            return
        self.received.append((msg["from"], msg["id"]))
        del self.received[:-20]
        if msg.xml.find("{urn:xmpp:chat-markers:0}markable") is not None and self.r.random() < 0.6:
            self.xmpp["xep_0333"].send_marker(msg["from"].bare, msg["id"], "displayed")

    def on_avatar(self, msg):
        # Clients cache avatars by hash: each is fetched once per user.
        try:
            info = msg["pubsub_event"]["items"]["item"]["avatar_metadata"]["info"]
            aid = info["id"]
        except Exception:
            return
        if aid and aid not in self.avatars_seen:
            self.avatars_seen.add(aid)
            self.w.spawn(self.iq("avatar-fetch", self.xmpp["xep_0084"].retrieve_avatar(msg["from"].bare, aid, timeout=15)))

    async def iq(self, kind, fut):
        try:
            await fut
            self.w.stats.add(kind)
        except (IqError, IqTimeout):
            self.w.stats.add(kind + "-error")
        except Exception as e:  # the client went away
            self.w.stats.errors += 1
            logging.debug("%s %s: %r", self.bare, kind, e)

    async def run(self, deadline):
        while time.monotonic() < deadline - 5:
            self.xmpp = self.new_client()
            started = asyncio.get_running_loop().create_future()
            self.xmpp.add_event_handler("session_start", lambda _e: started.done() or started.set_result(True))
            self.xmpp.add_event_handler("failed_auth", lambda _e: started.done() or started.set_result(False))
            self.xmpp.connect(tuple(self.w.sides[self.side]["addr"]), force_starttls=False, disable_starttls=True)
            try:
                ok = await asyncio.wait_for(started, 20)
            except asyncio.TimeoutError:
                ok = False
            if not ok:
                self.w.stats.errors += 1
                self.xmpp.abort()
                await asyncio.sleep(2)
                continue
            self.w.stats.sessions += 1
            try:
                await self.session(deadline, self.r.randint(10, 60))
            except Exception as e:
                self.w.stats.errors += 1
                logging.warning("%s: %r", self.bare, e)
            for room, nick in list(self.rooms.items()):
                if self.r.random() < 0.5:
                    self.xmpp["xep_0045"].leave_muc(room, nick, self.r.choice(["", "bye", "Gone fishing"]))
            self.rooms.clear()
            await self.xmpp.disconnect(wait=1.0)
            self.xmpp = None
            await asyncio.sleep(self.r.uniform(1, 8))

    def presence(self):
        show = self.r.choice(["", "", "away", "xa", "dnd", "chat"])
        status = self.r.choice(STATUSES) if self.r.random() < 0.6 else ""
        self.xmpp.send_presence(pshow=show or None, pstatus=status or None, ppriority=self.r.choice([0, 1, 5, 10, 50]))

    async def session(self, deadline, n):
        x = self.xmpp
        await self.iq("roster", x.get_roster(timeout=15))
        self.presence()
        if not self.subscribed:
            self.subscribed = True
            for b in self.remotes():
                x.send_presence(pto=b, ptype="subscribe")
        if self.avatar is not None and self.r.random() < 0.5:
            await self.iq("vcard-avatar", x["xep_0153"].set_avatar(avatar=self.avatar, mtype="image/png", timeout=15))
        for _ in range(n):
            if time.monotonic() > deadline:
                return
            await asyncio.sleep(self.r.uniform(0.2, 1.2))
            try:
                await self.action()
            except Exception as e:
                self.w.stats.errors += 1
                self.w.stats.add("exception-" + type(e).__name__)
                logging.info("%s: %r", self.bare, e)

    async def action(self):
        x = self.xmpp
        k = self.r.random()
        if k < 0.30:
            await self.chat()
        elif k < 0.38:
            self.extra_message()
        elif k < 0.44:
            self.presence()
            self.w.stats.add("presence")
        elif k < 0.62:
            await self.muc()
        elif k < 0.72:
            await self.pep()
        elif k < 0.78 and len(self.vcards_seen) < len(self.remotes()):
            # Clients cache vCards: each contact's is fetched once.
            b = self.r.choice([b for b in self.remotes() if b not in self.vcards_seen])
            self.vcards_seen.add(b)
            await self.iq("vcard-get", x["xep_0054"].get_vcard(b, timeout=15))
        else:
            await self.query()

    def to(self):
        b = self.remote()
        f = self.w.full.get(b)
        return f if f and self.r.random() < 0.5 else b

    async def chat(self):
        x = self.xmpp
        to = self.to()
        if self.r.random() < 0.5:
            m = x.make_message(to, mtype="chat")
            m["chat_state"] = "composing"
            m.send()
            await asyncio.sleep(self.r.uniform(0.2, 1.5))
        if self.r.random() < 0.08:
            body = LONG
        else:
            body = " ".join(self.r.choice(TEXTS) for _ in range(self.r.randint(1, 3)))
        m = x.make_message(to, mbody=body, mtype="chat")
        m["chat_state"] = "active"
        if self.r.random() < 0.7:
            m.enable("markable")
            m["origin_id"]["id"] = m["id"]
        if self.r.random() < 0.1:
            m["html"].set_body("<p><strong>%s</strong> <em>%s</em></p>" % (
                escape(body), "🙂"))
        if self.r.random() < 0.08:
            url = "https://upload.%s/%s/%s.jpg" % (self.w.sides[self.side]["domain"], base64.b32encode(self.r.randbytes(10)).decode().lower(), self.r.choice(["IMG_2041", "photo", "chart", "Bildschirmfoto"]))
            m["body"] = url
            m["oob"]["url"] = url
        m.send()
        self.sent.append((to, m["id"]))
        del self.sent[:-10]
        self.w.stats.add("chat")

    def extra_message(self):
        x = self.xmpp
        k = self.r.random()
        if k < 0.3 and self.sent:
            to, mid = self.sent[-1]
            m = x.make_message(to, mbody=self.r.choice(TEXTS) + " (edited)", mtype="chat")
            m["replace"]["id"] = mid
            m["chat_state"] = "active"
            m.send()
            self.w.stats.add("correction")
        elif k < 0.55 and self.received:
            frm, mid = self.r.choice(self.received)
            m = x.make_message(frm.bare, mtype="chat")
            x["xep_0444"].set_reactions(m, mid, self.r.sample(["👍", "❤️", "😂", "😮", "🎉"], self.r.randint(1, 2)))
            m.enable("store")
            m.send()
            self.w.stats.add("reaction")
        else:
            to = self.to()
            m = x.make_message(to, mbody="I sent you an OMEMO encrypted message but your client doesn't seem to support that. Find more information on https://conversations.im/omemo", mtype="chat")
            m.xml.append(ET.fromstring(omemo_like(self.r, self.r.randrange(1, 1 << 31), [self.r.randrange(1, 1 << 31) for _ in range(self.r.randint(1, 4))])))
            m.xml.append(ET.fromstring("<encryption xmlns='urn:xmpp:eme:0' namespace='eu.siacs.conversations.axolotl' name='OMEMO'/>"))
            m.enable("store")
            m.enable("markable")
            m.send()
            self.w.stats.add("omemo")

    async def muc(self):
        x = self.xmpp
        if not self.rooms or (len(self.rooms) < 3 and self.r.random() < 0.15):
            # Rooms on ejabberd are created by its own users only.
            svc = self.w.sides[self.side if self.r.random() < 0.5 else 1 - self.side]["muc"]
            room = "%s@%s" % (self.r.choice(ROOMS), svc)
            if room in self.rooms:
                return
            nick = self.name.capitalize() if self.r.random() < 0.7 else self.name + "_" + self.profile[2].split()[0].lower()
            try:
                pres, subject, _occ, _hist = await x["xep_0045"].join_muc_wait(
                    room, nick, maxstanzas=self.r.choice([0, 5, 20]), timeout=20)
            except Exception as e:
                self.w.stats.add("muc-join-error")
                logging.debug("%s join %s: %r", self.bare, room, e)
                return
            self.rooms[room] = nick
            self.w.stats.add("muc-join")
            if "201" in [str(c) for c in pres["muc"]["status_codes"]] or self.r.random() < 0.05:
                try:
                    form = await x["xep_0045"].get_room_config(room, timeout=15)
                    form["type"] = "submit"
                    for f, v in (("muc#roomconfig_roomname", room.split("@")[0].title()),
                                 ("muc#roomconfig_roomdesc", "Room for the %s team" % room.split("@")[0]),
                                 ("muc#roomconfig_persistentroom", True),
                                 ("muc#roomconfig_publicroom", True)):
                        if f in form["fields"]:
                            form["fields"][f]["value"] = v
                    await x["xep_0045"].set_room_config(room, form, timeout=15)
                    self.w.stats.add("muc-config")
                except Exception as e:
                    self.w.stats.add("muc-config-error")
                    logging.debug("%s config %s: %r", self.bare, room, e)
                x["xep_0045"].set_subject(room, self.r.choice(["Watch handover at 0800", "Ops channel — keep it short", "Bienvenue !", "Планёрка в 9:00"]))
            return
        room = self.r.choice(list(self.rooms))
        k = self.r.random()
        if k < 0.75:
            m = x.make_message(room, mbody=" ".join(self.r.choice(TEXTS) for _ in range(self.r.randint(1, 2))), mtype="groupchat")
            if self.r.random() < 0.5:
                m["origin_id"]["id"] = m["id"]
            if self.r.random() < 0.5:
                m.enable("markable")
            m.send()
            self.w.stats.add("groupchat")
        elif k < 0.85:
            roster = x["xep_0045"].get_roster(room) or []
            others = [n for n in roster if n != self.rooms[room]]
            if others:
                m = x.make_message("%s/%s" % (room, self.r.choice(others)), mbody=self.r.choice(TEXTS), mtype="chat")
                m.xml.append(ET.fromstring("<x xmlns='http://jabber.org/protocol/muc#user'/>"))
                m.send()
                self.w.stats.add("muc-pm")
        elif k < 0.93:
            nick = self.rooms[room] + self.r.choice(["_", "|away", " (mobile)", "²"])
            x.send_presence(pto="%s/%s" % (room, nick))
            self.rooms[room] = nick
            self.w.stats.add("muc-nick")
        elif k < 0.97:
            x["xep_0045"].set_subject(room, self.r.choice(["Next drill: Thursday", "Thema: Wartung", "Tema del día: combustible"]))
            self.w.stats.add("muc-subject")
        else:
            x["xep_0045"].leave_muc(room, self.rooms.pop(room), "brb")
            self.w.stats.add("muc-leave")

    async def pep(self):
        x = self.xmpp
        k = self.r.randrange(5)
        if k == 0:
            await self.iq("pep-nick", x["xep_0172"].publish_nick(self.name.capitalize() + self.r.choice(["", " 🚢", " (ship)", " M."]), timeout=15))
        elif k == 1:
            a, t, s, n = self.r.choice(TUNES)
            await self.iq("pep-tune", x["xep_0118"].publish_tune(artist=a, title=t, source=s, length=str(n), track=str(self.r.randint(1, 9)), timeout=15))
        elif k == 2:
            await self.iq("pep-mood", x["xep_0107"].publish_mood(self.r.choice(MOODS), self.r.choice(["", "long day", "sun is out", "ça va"]), timeout=15))
        elif k == 3:
            await self.iq("pep-geoloc", x["xep_0080"].publish_location(
                lat="%.5f" % self.r.uniform(-60, 60), lon="%.5f" % self.r.uniform(-180, 180),
                accuracy=self.r.choice(["10", "50", "1000"]), timeout=15))
        else:
            data = picture(self.r, self.r.randint(1000, 4000))
            await self.iq("pep-avatar-data", x["xep_0084"].publish_avatar(data, timeout=15))
            info = {"id": hashlib.sha1(data).hexdigest(), "type": "image/png", "bytes": str(len(data)), "height": "96", "width": "96"}
            await self.iq("pep-avatar-meta", x["xep_0084"].publish_avatar_metadata([info], timeout=15))

    async def query(self):
        x = self.xmpp
        dom = self.w.sides[1 - self.side]["domain"]
        b = self.remote()
        full = self.w.full.get(b)
        k = self.r.randrange(9)
        if k == 0:
            await self.iq("disco-info", x["xep_0030"].get_info(jid=dom, cached=False, timeout=15))
        elif k == 1:
            await self.iq("disco-items", x["xep_0030"].get_items(jid=self.r.choice([dom, self.w.sides[1 - self.side]["muc"]]), timeout=15))
        elif k == 2 and full:
            await self.iq("disco-info-client", x["xep_0030"].get_info(jid=full, cached=False, timeout=15))
        elif k == 3:
            await self.iq("version", x["xep_0092"].get_version(full or dom, timeout=15))
        elif k == 4:
            await self.iq("time", x["xep_0202"].get_entity_time(full or dom, timeout=15))
        elif k == 5:
            await self.iq("disco-info-muc", x["xep_0030"].get_info(jid="%s@%s" % (self.r.choice(ROOMS), self.w.sides[1 - self.side]["muc"]), cached=False, timeout=15))
        else:
            await self.iq("ping", x["xep_0199"].send_ping(full or dom, timeout=15))


class World:
    def __init__(self, cfg):
        self.sides = cfg["sides"]
        self.stats = Stats()
        self.full = {}
        self.tasks = set()
        self.bare = [sorted("%s@%s" % (u, s["domain"]) for u in s["users"]) for s in self.sides]

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

    async def track(u):
        # Full JIDs of logged-in users, for messages, pings and disco to clients.
        while time.monotonic() < deadline:
            if u.xmpp is not None and u.xmpp.boundjid.resource:
                w.full[u.bare] = str(u.xmpp.boundjid)
            else:
                w.full.pop(u.bare, None)
            await asyncio.sleep(0.5)

    async def staggered(u, i):
        await asyncio.sleep(0.3 * i)
        await u.run(deadline)

    await asyncio.gather(*[staggered(u, i) for i, u in enumerate(users)], *[track(u) for u in users])
    if w.tasks:
        await asyncio.wait(w.tasks, timeout=5)
    print("slixmpp driver: %d sessions, %d errors, actions %s" % (
        w.stats.sessions, w.stats.errors, json.dumps(dict(sorted(w.stats.actions.items())))), file=sys.stderr)


if __name__ == "__main__":
    logging.basicConfig(level=logging.CRITICAL, format="%(levelname)s %(name)s %(message)s")
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    asyncio.run(main(cfg))
