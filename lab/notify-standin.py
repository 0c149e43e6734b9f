#!/usr/bin/env python3
"""A recording STAND-IN of four notification services for the runbook lab. It is NOT Slack,
NOT PagerDuty, NOT Atlassian Statuspage and NOT Telegram: nothing leaves this machine and no
message reaches anybody. One HTTP server answers, by path, the parts of their APIs runbook-mcp
calls, checks the credentials the lab made (so a test proves the right secret was sent) and
appends every request with its answer as one JSON line to a record file BEFORE answering, so a
request answered with a scripted failure is on the record too.

    notify-standin.py --listen 127.0.0.1:8099 --record FILE --secrets DIR --statuspage-page abc123

  Slack           POST /api/chat.postMessage, /api/conversations.create (Bearer slack_bot_token;
                  errors are HTTP 200 ok:false, as Slack answers them)
  PagerDuty       POST /v2/enqueue (routing_key = pagerduty_routing_key)
  Statuspage      POST /v1/pages/PAGE/incidents, PATCH|PUT .../incidents/ID (OAuth statuspage_api_key)
  Telegram        /bot<token>/getMe|getWebhookInfo|deleteWebhook|sendMessage|editMessageText|
                  editMessageReplyMarkup|answerCallbackQuery|getUpdates; one bot per
                  telegram*bot_token file in DIR, each with its own chats and update queue

DIR: slack_bot_token, pagerduty_routing_key, statuspage_api_key, telegram_bot_token,
telegram_approval_bot_token (no trailing newline). A missing file is an unknown credential.
Record line: {seq, time (arrival), api, method, path (Telegram's token as <token>), bot, query,
headers (lowercased, as sent), body (JSON, form dict or raw text), status, answer}. seq never
restarts, not even on reset, so a `since` taken before a reset stays valid. As the real
services do: an edit without reply_markup removes the inline keyboard; a callback query carries
the message as it is now; a Statuspage incident lists its incident_updates newest first.

Stand-in-only endpoints (never recorded):
  GET  /_standin/state                  health: counts, bots, credentials known, failures
  GET  /_standin/requests?since=N       the records with seq > N (a JSON list)
  POST /_standin/reset                  records (and FILE), failures, every service's state
  POST /_standin/fail {path, status, times?, retry_after?}  the next `times` requests whose
       recorded path is `path` ("*": any) get `status`, {"ok":false,"error":"standin_scripted_failure"}
  GET  /_standin/slack | pagerduty | statuspage            each service's state
  GET  /_standin/telegram?bot=NAME      messages (with edits), callback queries, queue, webhook
  POST /_standin/telegram/press {bot, chat_id, message_id, from_id?, username?, data}
  POST /_standin/telegram/reply {bot, chat_id, from_id?, username?, text, reply_to_message_id?}
  POST /_standin/telegram/webhook {bot, url}   set (or, with "", clear) a webhook

Python 3 standard library only.
"""

import argparse
import copy
import glob
import json
import os
import random
import re
import string
import sys
import threading
import time
import traceback
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

LOCK = threading.Lock()  # all state below; a long poll waits on a Condition of this lock
SECRETS = {}  # credential file name -> value (files present and non-empty only)
BOTS = {}  # telegram credential file name -> Bot; permanent, so a waiting poll survives a reset
S = {}  # the resettable state, see reset()
COUNT = {"seq": 0, "slack_ts": 0}  # never reset: ids a client already holds must stay unique
RECORD = PAGE_ID = None
TG_PATH = re.compile(r"/bot([^/]*)(?:/(.*))?")
TRUE = (True, "true", "1", 1)  # a boolean as JSON or a form sends it


class Fail(Exception):
    """An error answer, raised from deep inside a handler."""

    def __init__(self, status, answer, headers=None):
        super().__init__(status)
        self.status, self.answer, self.headers = status, answer, headers or {}


def iso(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rand_id(n, alphabet=string.ascii_lowercase + string.digits):
    return "".join(random.choices(alphabet, k=n))


def reset():
    """Caller holds LOCK."""
    S.clear()
    S.update(records=[], failures=[], statuspage={}, pagerduty={"alerts": {}, "events": []},
             slack={"C0INCIDENTS": {"id": "C0INCIDENTS", "name": "incidents", "is_private": False,
                                    "messages": []}})
    for bot in BOTS.values():
        bot.clear()
        bot.cond.notify_all()  # a waiting getUpdates returns (empty) instead of sleeping on
    if RECORD:
        open(RECORD, "w").close()


def record(rec):
    COUNT["seq"] += 1
    rec = {"seq": COUNT["seq"], **rec}
    S["records"].append(rec)
    if RECORD:
        with open(RECORD, "a") as f:
            f.write(json.dumps(rec) + "\n")


def take_failure(path):
    """The first scripted failure matching the (masked) path, used up by one."""
    for f in S["failures"]:
        if f["path"] in ("*", path):
            f["times"] -= 1
            if f["times"] <= 0:
                S["failures"].remove(f)
            headers = {} if f["retry_after"] is None else {"Retry-After": str(f["retry_after"])}
            return Fail(f["status"], {"ok": False, "error": "standin_scripted_failure"}, headers)
    return None


# ---------------------------------------------------------------------------------------------
# Slack Web API


def slack_channel(ref):
    """`#name`, `name` or the id `C…` of a known channel."""
    for ch in S["slack"].values():
        if isinstance(ref, str) and (ref[1:] == ch["name"] if ref.startswith("#") else ref in (ch["id"], ch["name"])):
            return ch
    return None


def slack_post(body):
    text, blocks, thread = body.get("text"), body.get("blocks"), body.get("thread_ts")
    if not (isinstance(text, str) and text) and not blocks:
        return {"ok": False, "error": "no_text"}
    ch = slack_channel(body.get("channel"))
    if ch is None:
        return {"ok": False, "error": "channel_not_found"}
    if thread and not any(m["ts"] == thread for m in ch["messages"]):
        return {"ok": False, "error": "thread_not_found"}
    COUNT["slack_ts"] += 1
    msg = {"type": "message", "text": text or "", "ts": "%d.%06d" % (time.time(), COUNT["slack_ts"] % 1000000)}
    if thread:
        msg["thread_ts"] = thread
    if blocks:
        msg["blocks"] = blocks
    ch["messages"].append(msg)
    return {"ok": True, "channel": ch["id"], "ts": msg["ts"], "message": copy.deepcopy(msg)}


def slack_create(body):
    name = body.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_-]{1,80}", name):
        return {"ok": False, "error": "invalid_name_specials"}
    if any(ch["name"] == name for ch in S["slack"].values()):
        return {"ok": False, "error": "name_taken"}
    cid = "C" + rand_id(8, "0123456789ABCDEF")
    while cid in S["slack"]:
        cid = "C" + rand_id(8, "0123456789ABCDEF")
    ch = {"id": cid, "name": name, "is_private": body.get("is_private") in TRUE}
    S["slack"][cid] = {**ch, "messages": []}
    return {"ok": True, "channel": ch}


def slack(req):
    fn = {"chat.postMessage": slack_post, "conversations.create": slack_create}.get(req["path"][len("/api/"):])
    token, h = SECRETS.get("slack_bot_token"), req["headers"]
    error = ("unknown_method" if fn is None else
             "invalid_auth" if not token or h.get("authorization") != "Bearer " + token else
             "invalid_form_data" if not h.get("content-type", "").lower().startswith("application/json") else
             "invalid_json" if not isinstance(req["body"], dict) else None)
    return 200, {"ok": False, "error": error} if error else fn(req["body"])


# ---------------------------------------------------------------------------------------------
# PagerDuty Events API v2


def pagerduty(req):
    if req["path"] != "/v2/enqueue" or req["method"] != "POST":
        return 404, {"status": "not found", "message": "Not Found"}
    body, key = req["body"], SECRETS.get("pagerduty_routing_key")
    if not isinstance(body, dict):
        errors = ["Event must be a JSON object"]
    elif not key or body.get("routing_key") != key:
        errors = ["Invalid routing key"]
    else:
        errors, action, dedup, p = [], body.get("event_action"), body.get("dedup_key"), body.get("payload")
        if action not in ("trigger", "acknowledge", "resolve"):
            errors.append("'event_action' is missing or invalid (trigger, acknowledge or resolve)")
        if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
            errors.append("'dedup_key' must be a string of at most 255 characters")
        if action == "trigger" and not isinstance(p, dict):
            errors.append("'payload' is missing or not an object")
        elif action == "trigger":
            if not isinstance(p.get("summary"), str) or not 1 <= len(p["summary"]) <= 1024:
                errors.append("'payload.summary' must be 1 to 1024 characters")
            if not isinstance(p.get("source"), str) or not p["source"]:
                errors.append("'payload.source' is missing or blank")
            if p.get("severity") not in ("critical", "error", "warning", "info"):
                errors.append("'payload.severity' must be critical, error, warning or info")
        elif action and not dedup:
            errors.append("'dedup_key' is required for acknowledge and resolve events")
    if errors:
        return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}

    dedup = dedup or uuid.uuid4().hex
    alerts, event = S["pagerduty"]["alerts"], {"event_action": action, "dedup_key": dedup, "time": req["time"]}
    alert = alerts.get(dedup)
    if action == "trigger":
        facts = {k: p[k] for k in ("summary", "source", "severity")}
        event.update(facts)
        if alert is None or alert["status"] == "resolved":  # a resolved key opens a new alert
            alert = alerts[dedup] = {"dedup_key": dedup, "status": "triggered", "events": []}
        alert.update(facts)
    elif alert is not None and alert["status"] != "resolved":  # else PagerDuty ignores it
        alert["status"] = "acknowledged" if action == "acknowledge" else "resolved"
    if alert is not None:
        alert["events"].append(action)
    S["pagerduty"]["events"].append(event)
    return 202, {"status": "success", "message": "Event processed", "dedup_key": dedup}


# ---------------------------------------------------------------------------------------------
# Atlassian Statuspage

SP_STATUSES = ("investigating", "identified", "monitoring", "resolved")


def sp_fields(body, create):
    """The `incident` envelope, checked; the first violation is a 422 naming the field."""
    inc = body.get("incident") if isinstance(body, dict) else None
    if not isinstance(inc, dict):
        raise Fail(422, {"error": "incident is missing or not an object"})
    ids, comps = inc.get("component_ids"), inc.get("components")
    for broken, error in (
            ((create or "name" in inc) and not (isinstance(inc.get("name"), str) and inc["name"].strip()),
             "name can't be blank"),
            (create and inc.get("status") in (None, ""), "status can't be blank"),
            ("status" in inc and inc["status"] not in SP_STATUSES,
             "status is not included in the list (%s)" % ", ".join(SP_STATUSES)),
            (inc.get("body") is not None and not isinstance(inc["body"], str), "body must be a string"),
            (ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)),
             "component_ids must be an array of strings"),
            (comps is not None and not isinstance(comps, dict), "components must be an object"),
            ("deliver_notifications" in inc and not isinstance(inc["deliver_notifications"], bool),
             "deliver_notifications must be true or false")):
        if broken:
            raise Fail(422, {"error": error})
    return inc


def sp_apply(incident, inc, now):
    for k in ("name", "status", "component_ids", "components", "deliver_notifications"):
        if inc.get(k) is not None:
            incident[k] = inc[k]
    incident["updated_at"] = iso(now)
    if incident["status"] == "resolved" and not incident["resolved_at"]:
        incident["resolved_at"] = iso(now)
    if "body" in inc or "status" in inc:
        incident["incident_updates"].insert(0, {  # newest first, as Statuspage lists them
            "id": rand_id(12), "incident_id": incident["id"], "status": incident["status"],
            "body": inc.get("body") or "", "created_at": iso(now)})


def statuspage(req):
    key = SECRETS.get("statuspage_api_key")
    if not key or req["headers"].get("authorization") != "OAuth " + key:
        return 401, {"error": "Could not authenticate"}
    m = re.fullmatch(r"/v1/pages/([^/]+)/incidents(?:/([^/]+))?", req["path"])
    if not m or m.group(1) != PAGE_ID:
        return 404, {"error": "Not found"}
    incidents, iid, method = S["statuspage"], m.group(2), req["method"]
    if iid is None and method == "POST":
        inc, new = sp_fields(req["body"], True), rand_id(12)
        incident = incidents[new] = {
            "id": new, "page_id": PAGE_ID, "name": None, "status": None, "impact": "none",
            "shortlink": "http://stspg.io/" + new, "created_at": iso(req["time"]), "resolved_at": None,
            "component_ids": [], "components": {}, "deliver_notifications": True, "incident_updates": []}
        sp_apply(incident, {**inc, "body": inc.get("body")}, req["time"])  # always a first update
        return 201, copy.deepcopy(incident)
    if iid is not None and method in ("PATCH", "PUT"):
        if iid not in incidents:
            return 404, {"error": "Not found"}
        sp_apply(incidents[iid], sp_fields(req["body"], False), req["time"])
        return 200, copy.deepcopy(incidents[iid])
    return 405, {"error": "Method not allowed"}


# ---------------------------------------------------------------------------------------------
# Telegram Bot API


class Bot:
    def __init__(self, name, token):
        self.name, self.token = name, token
        head = token.split(":", 1)[0]
        self.user = {"id": int(head) if head.isdigit() else 1, "is_bot": True,
                     "first_name": "runbook lab", "username": name + "_lab_bot"}
        self.cond = threading.Condition(LOCK)
        # never reset: a poller's offset from before a reset must not hide the new updates
        self.next_update = 100000 + random.randrange(900000)
        self.polling, self.generation = False, 0
        self.clear()

    def clear(self):
        self.queue = []  # updates not yet confirmed, oldest first
        self.chats = {}  # chat id -> {"last": message_id, "messages": {message_id: entry}}
        self.sent = []  # the bot's own message entries, in the order sent
        self.queries = {}  # callback_query_id -> what was pressed, and how it was answered
        self.webhook = ""
        self.generation += 1

    def chat(self, cid):
        return self.chats.setdefault(cid, {"last": 0, "messages": {}})

    def message(self, cid, mid):
        return self.chats.get(cid, {}).get("messages", {}).get(mid)

    def push(self, update):
        self.next_update += 1
        self.queue.append({"update_id": self.next_update, **update})
        self.cond.notify_all()
        return self.next_update


def tg_err(code, description):
    return {"ok": False, "error_code": code, "description": description}


def bad(what):
    return Fail(400, tg_err(400, "Bad Request: " + what))


def chat_id_of(v):
    """A chat id as Telegram takes it: an integer (also as a string) or an @username."""
    if isinstance(v, str) and re.fullmatch(r"\s*-?\d+\s*", v):
        return int(v)
    if (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, str) and re.fullmatch(r"@\w{2,}", v)):
        return v
    return None


def int_param(p, name, default=None):
    v = p.get(name)
    if v is None or v == "":
        return default
    if isinstance(v, str) and re.fullmatch(r"\s*-?\d+\s*", v):
        return int(v)
    if not isinstance(v, int) or isinstance(v, bool):
        raise bad("field \"%s\" must be of type Integer" % name)
    return v


def need_chat(p):
    if p.get("chat_id") in (None, ""):
        raise bad("chat_id is empty")
    cid = chat_id_of(p["chat_id"])
    if cid is None:
        raise bad("chat not found")
    return cid


def need_text(p):
    text = p.get("text")
    if not isinstance(text, str) or not text:
        raise bad("message text is empty")
    if len(text) > 4096:
        raise bad("message is too long")
    return text


def markup(v):
    """reply_markup (an object or its JSON) with its inline keyboard checked; None without an
    inline keyboard (the only kind a message here keeps)."""
    if isinstance(v, str) and v:
        try:
            v = json.loads(v)
        except ValueError:
            raise bad("can't parse reply keyboard markup JSON object")
    if v is None or v == "":
        return None
    if not isinstance(v, dict):
        raise bad("can't parse reply keyboard markup JSON object")
    rows = v.get("inline_keyboard")
    if rows is None:
        return None
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise bad("field \"inline_keyboard\" of the InlineKeyboardMarkup must be an Array of Arrays")
    for b in (b for row in rows for b in row):
        if not isinstance(b, dict) or not isinstance(b.get("text"), str) or not b["text"]:
            raise bad("can't parse inline keyboard button: Field \"text\" must be of type String")
        if "callback_data" in b:  # Telegram counts bytes, not characters
            if not isinstance(b["callback_data"], str) or not 1 <= len(b["callback_data"].encode()) <= 64:
                raise bad("BUTTON_DATA_INVALID")
        elif not any(k in b for k in ("url", "switch_inline_query", "login_url", "web_app")):
            raise bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
    return v


def tg_send(bot, p, now):
    cid, text = need_chat(p), need_text(p)
    mode = p.get("parse_mode")
    if mode not in (None, "") and str(mode).lower() not in ("markdown", "markdownv2", "html"):
        raise bad("unsupported parse_mode")
    rm, chat = markup(p.get("reply_markup")), bot.chat(cid)
    chat["last"] += 1  # message ids count per chat, the users' messages included
    msg = {"message_id": chat["last"], "from": dict(bot.user), "chat": {"id": cid}, "date": int(now), "text": text}
    if rm is not None:
        msg["reply_markup"] = rm
    entry = {"by": "bot", "message": msg, "parse_mode": mode, "sent": {"text": text, "reply_markup": rm}, "edits": []}
    chat["messages"][msg["message_id"]] = entry
    bot.sent.append(entry)
    return copy.deepcopy(msg)


def tg_edit(bot, p, now, method):
    cid, mid = need_chat(p), int_param(p, "message_id")
    if mid is None:
        raise bad("message identifier is not specified")
    entry = bot.message(cid, mid)
    if entry is None:
        raise bad("message to edit not found")
    if entry["by"] != "bot":
        raise bad("message can't be edited")
    msg = entry["message"]
    text = need_text(p) if method == "editMessageText" else msg["text"]
    rm = markup(p.get("reply_markup"))  # absent: the edited message has no keyboard, as in Telegram
    if text == msg["text"] and rm == msg.get("reply_markup"):
        raise bad("message is not modified")
    msg.pop("reply_markup", None)
    msg.update({"text": text, "edit_date": int(now)}, **({"reply_markup": rm} if rm is not None else {}))
    entry["edits"].append({"method": method, "edit_date": int(now), "text": text, "reply_markup": rm})
    return copy.deepcopy(msg)


def tg_answer(bot, p, now):
    q = bot.queries.get(str(p.get("callback_query_id", "")))
    if q is None or q["answered"]:
        raise bad("query is too old and response timeout expired or query ID is invalid")
    text = p.get("text")
    if text is not None and (not isinstance(text, str) or len(text) > 200):
        raise bad("MESSAGE_TOO_LONG")
    q.update(answered=True, answer_text=text, show_alert=p.get("show_alert") in TRUE, answered_at=now)
    return True


def tg_get_updates(bot, p):
    if bot.webhook:
        raise Fail(409, tg_err(409, "Conflict: can't use getUpdates method while webhook is active; "
                                    "use deleteWebhook to delete the webhook first"))
    if bot.polling:
        raise Fail(409, tg_err(409, "Conflict: terminated by other getUpdates request; "
                                    "make sure that only one bot instance is running"))
    offset = int_param(p, "offset")
    limit = min(max(int_param(p, "limit", 100) or 100, 1), 100)  # 0 means the default
    timeout = min(max(int_param(p, "timeout", 0), 0), 50)
    allowed = p.get("allowed_updates")
    if isinstance(allowed, str):
        try:
            allowed = json.loads(allowed) if allowed else None
        except ValueError:
            raise bad("can't parse allowed_updates JSON array")
    if allowed is not None and not isinstance(allowed, list):
        raise bad("allowed_updates must be an Array")
    if offset is not None:  # the confirmation: what the poller has seen is dropped
        bot.queue = bot.queue[offset:] if offset < 0 else [u for u in bot.queue if u["update_id"] >= offset]

    def ready():
        return [u for u in bot.queue if not allowed or any(k in u for k in allowed)][:limit]

    deadline, generation, out = time.monotonic() + timeout, bot.generation, ready()
    bot.polling = True
    try:  # Condition.wait releases LOCK meanwhile; a push, a reset or a webhook wakes it
        while not out and bot.generation == generation and not bot.webhook and time.monotonic() < deadline:
            bot.cond.wait(deadline - time.monotonic())
            out = ready()
    finally:
        bot.polling = False
    return copy.deepcopy(out)


def tg_delete_webhook(bot, p):
    bot.webhook = ""
    if p.get("drop_pending_updates") in TRUE:
        bot.queue = []
    return True


def telegram(req):
    bot = BOTS.get(req["bot"]) if req["bot"] else None
    if bot is None:
        return 401, tg_err(401, "Unauthorized")
    p, now = dict(req["query"]), req["time"]
    if isinstance(req["body"], dict):
        p.update(req["body"])
    elif req["body"] and "json" in req["headers"].get("content-type", ""):
        raise bad("can't parse JSON object")
    calls = {
        "getme": lambda: dict(bot.user),
        "getwebhookinfo": lambda: {"url": bot.webhook, "has_custom_certificate": False,
                                   "pending_update_count": len(bot.queue)},
        "deletewebhook": lambda: tg_delete_webhook(bot, p),
        "sendmessage": lambda: tg_send(bot, p, now),
        "editmessagetext": lambda: tg_edit(bot, p, now, "editMessageText"),
        "editmessagereplymarkup": lambda: tg_edit(bot, p, now, "editMessageReplyMarkup"),
        "answercallbackquery": lambda: tg_answer(bot, p, now),
        "getupdates": lambda: tg_get_updates(bot, p),
    }
    call = calls.get((TG_PATH.fullmatch(req["raw_path"]).group(2) or "").lower())  # names ignore case
    return (200, {"ok": True, "result": call()}) if call else (404, tg_err(404, "Not Found"))


# ---------------------------------------------------------------------------------------------
# the stand-in's own endpoints (test hooks)


def hook_bot(b, default=None):
    name = b.get("bot") or default
    if name not in BOTS:
        raise Fail(404, {"ok": False, "error": "no such bot %r (bots: %s)" % (name, ", ".join(sorted(BOTS)))})
    return BOTS[name]


def hook_user(b):
    username = b.get("username") or "alice"
    return {"id": int(b.get("from_id") or 111111111), "is_bot": False,
            "first_name": b.get("first_name") or username, "username": username}


def press(b):
    """A user pressed a button of a message the bot sent: a callback_query update. The data is
    taken as given (a test may forge one no button carries)."""
    bot, cid = hook_bot(b), chat_id_of(b.get("chat_id"))
    entry = bot.message(cid, int(b.get("message_id") or 0))
    if entry is None or entry["by"] != "bot":
        raise Fail(404, {"ok": False, "error": "no message %r in chat %r sent by %s" % (b.get("message_id"), cid, bot.name)})
    if not isinstance(b.get("data"), str):
        raise Fail(400, {"ok": False, "error": "data (the button's callback_data) is required"})
    qid = str(random.getrandbits(62))
    while qid in bot.queries:
        qid = str(random.getrandbits(62))
    user = hook_user(b)
    bot.queries[qid] = {"id": qid, "from_id": user["id"], "username": user["username"], "chat_id": cid,
                        "message_id": entry["message"]["message_id"], "data": b["data"],
                        "answered": False, "answer_text": None}
    n = bot.push({"callback_query": {"id": qid, "from": user, "message": copy.deepcopy(entry["message"]),
                                     "chat_instance": "1", "data": b["data"]}})
    return 200, {"update_id": n, "callback_query_id": qid}


def reply(b):
    """A user wrote in the chat (perhaps replying to a message): a message update."""
    bot, cid = hook_bot(b), chat_id_of(b.get("chat_id"))
    if cid is None or not isinstance(b.get("text"), str) or not b["text"]:
        raise Fail(400, {"ok": False, "error": "chat_id and a non-empty text are required"})
    msg = {"from": hook_user(b), "chat": {"id": cid}, "date": int(time.time()), "text": b["text"]}
    if b.get("reply_to_message_id") is not None:
        to = bot.message(cid, int(b["reply_to_message_id"]))
        if to is None:
            raise Fail(404, {"ok": False, "error": "no message %r in chat %r" % (b["reply_to_message_id"], cid)})
        msg["reply_to_message"] = copy.deepcopy(to["message"])
    chat = bot.chat(cid)
    chat["last"] += 1
    msg = {"message_id": chat["last"], **msg}
    chat["messages"][chat["last"]] = {"by": "user", "message": msg}
    return 200, {"update_id": bot.push({"message": copy.deepcopy(msg)}), "message_id": msg["message_id"]}


def set_webhook(b):
    bot = hook_bot(b)
    bot.webhook = b.get("url") or ""
    bot.cond.notify_all()  # a waiting getUpdates ends
    return 200, {"ok": True, "bot": bot.name, "webhook": bot.webhook}


def telegram_state(query):
    bot = hook_bot(query, "telegram_bot_token")
    return 200, {
        "bot": bot.name,
        "messages": [{**e["message"], "parse_mode": e["parse_mode"], "sent": e["sent"], "edits": e["edits"]}
                     for e in bot.sent],
        "user_messages": [e["message"] for c in bot.chats.values() for e in c["messages"].values() if e["by"] == "user"],
        "callback_queries": list(bot.queries.values()),
        "queued": len(bot.queue), "webhook": bot.webhook, "polling": bot.polling}


def add_failure(b):
    times, after = b.get("times", 1), b.get("retry_after")
    if not (isinstance(b.get("path"), str) and isinstance(b.get("status"), int) and 100 <= b["status"] <= 599
            and isinstance(times, int) and times >= 1 and (after is None or isinstance(after, (int, float)))):
        raise Fail(400, {"ok": False, "error": "want {path, status (100-599), times? (>=1), retry_after?}"})
    S["failures"].append({"path": b["path"], "status": b["status"], "times": times, "retry_after": after})
    return 200, {"ok": True, "failures": S["failures"]}


def do_reset():
    reset()
    return 200, {"ok": True, "reset": True}


def control(method, path, query, body):
    """Caller holds LOCK."""
    b = body if isinstance(body, dict) else {}
    get = {
        "/_standin/state": lambda: (200, {"ok": True, "standin": "notify stand-in (not the real services)",
                                          "requests": len(S["records"]), "last_seq": COUNT["seq"],
                                          "failures": S["failures"], "bots": sorted(BOTS),
                                          "credentials": sorted(SECRETS)}),
        "/_standin/requests": lambda: (200, [r for r in S["records"] if r["seq"] > int(query.get("since") or 0)]),
        "/_standin/slack": lambda: (200, {"channels": list(S["slack"].values())}),
        "/_standin/pagerduty": lambda: (200, S["pagerduty"]),
        "/_standin/statuspage": lambda: (200, {"incidents": list(S["statuspage"].values())}),
        "/_standin/telegram": lambda: telegram_state(query),
    }
    post = {"/_standin/reset": do_reset, "/_standin/fail": lambda: add_failure(b),
            "/_standin/telegram/press": lambda: press(b), "/_standin/telegram/reply": lambda: reply(b),
            "/_standin/telegram/webhook": lambda: set_webhook(b)}
    table = {"GET": get, "POST": post}.get(method, {})
    if path in table:
        return table[path]()
    return (405, {"ok": False, "error": "method not allowed"}) if path in get or path in post else (
        404, {"ok": False, "error": "no such stand-in endpoint"})


# ---------------------------------------------------------------------------------------------
# HTTP


def classify(path):
    """(api, path as recorded, bot name): Telegram's token never reaches the record."""
    m = TG_PATH.fullmatch(path)
    if m:
        bot = next((name for name, b in BOTS.items() if b.token == m.group(1)), None)
        return "telegram", "/bot<token>" + ("/" + m.group(2) if m.group(2) is not None else ""), bot
    for prefix, api in (("/api/", "slack"), ("/v2/", "pagerduty"), ("/v1/", "statuspage")):
        if path.startswith(prefix):
            return api, path, None
    return "unknown", path, None


def unknown(req):
    sys.stderr.write("notify stand-in: no such endpoint: %s %s\n" % (req["method"], req["path"]))
    return 404, {"ok": False, "error": "not_found", "description": "no such endpoint on the notify stand-in"}


APIS = {"slack": slack, "pagerduty": pagerduty, "statuspage": statuspage, "telegram": telegram, "unknown": unknown}


def parse_body(raw, ctype):
    text, ctype = raw.decode("utf-8", "replace"), ctype.lower()
    if "json" in ctype:
        try:
            return json.loads(text)
        except ValueError:
            return text
    if ctype.startswith("application/x-www-form-urlencoded"):
        return dict(parse_qsl(text, keep_blank_values=True))
    return text


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as HTTP clients expect
    server_version = "notify-standin"

    def log_message(self, fmt, *args):  # quiet per request; errors go to stderr (log_error)
        pass

    def log_error(self, fmt, *args):
        sys.stderr.write("notify stand-in: %s %s\n" % (self.address_string(), fmt % args))

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():  # curl -T, some clients
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send(self, status, answer, headers=None):
        data = json.dumps(answer).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.log_error("client went away before the answer (HTTP %d)", status)

    def handle_any(self):
        arrived = time.time()
        url = urlsplit(self.path)
        path, query = url.path, dict(parse_qsl(url.query, keep_blank_values=True))
        headers = {}
        for k, v in self.headers.items():
            headers[k.lower()] = headers[k.lower()] + ", " + v if k.lower() in headers else v
        raw = self.read_body()

        if path.startswith("/_standin/"):  # a test's hook: JSON, whatever curl says it sends
            body = parse_body(raw, "application/json")
            with LOCK:
                try:
                    status, answer = control(self.command, path, query, body)
                except Fail as f:
                    status, answer = f.status, f.answer
                except (ValueError, TypeError) as e:  # a test hook called with a wrong value
                    status, answer = 400, {"ok": False, "error": "bad stand-in request: %s" % e}
                data = json.loads(json.dumps(answer))  # a snapshot, taken under the lock
            return self.send(status, data)

        body = parse_body(raw, headers.get("content-type", ""))
        api, shown, bot = classify(path)
        req = {"time": arrived, "method": self.command, "path": shown, "raw_path": path, "bot": bot,
               "query": query, "headers": headers, "body": body}
        extra = {}
        with LOCK:
            try:
                fault = take_failure(shown)
                if fault:
                    raise fault
                status, answer = APIS[api](req)
            except Fail as f:
                status, answer, extra = f.status, f.answer, f.headers
            except Exception:
                traceback.print_exc()
                status, answer = 500, {"ok": False, "error": "standin_internal_error"}
            # the answer is decided: on the record before a byte of it is sent
            record({"time": arrived, "api": api, "method": self.command, "path": shown, "bot": bot,
                    "query": query, "headers": headers, "body": body, "status": status, "answer": answer})
        self.send(status, answer, extra)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


def read_secrets(d):
    names = {"slack_bot_token", "pagerduty_routing_key", "statuspage_api_key", "telegram_bot_token",
             "telegram_approval_bot_token"}
    names.update(os.path.basename(f) for f in glob.glob(os.path.join(d, "telegram*bot_token")))
    for name in sorted(names):
        try:
            with open(os.path.join(d, name)) as f:
                value = f.read().rstrip("\r\n")
        except OSError:
            continue  # an unknown credential: requests needing it fail authentication
        if value:
            SECRETS[name] = value
            if name.startswith("telegram"):
                BOTS[name] = Bot(name, value)


def main():
    global RECORD, PAGE_ID
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:8099")
    ap.add_argument("--record", required=True, help="JSON-lines file every request is appended to")
    ap.add_argument("--secrets", required=True, help="directory of credential files")
    ap.add_argument("--statuspage-page", default="abc123", help="the one Statuspage page id")
    a = ap.parse_args()
    RECORD, PAGE_ID = a.record, a.statuspage_page
    read_secrets(a.secrets)
    with LOCK:  # reset() wakes the bots' Conditions, which needs their lock held
        reset()
    host, _, port = a.listen.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    sys.stderr.write("notify stand-in (not Slack, PagerDuty, Statuspage or Telegram) on %s, recording to %s; "
                     "credentials: %s\n" % (a.listen, RECORD, ", ".join(sorted(SECRETS)) or "none"))
    server.serve_forever()


if __name__ == "__main__":
    main()
