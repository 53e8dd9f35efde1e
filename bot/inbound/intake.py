"""Everything the KV is asked before a handler runs, in one round trip: claim the delivery (the retry
guard), open the customer-service window, decide whether the member's last interaction is due to be
recorded (once a minute, and always on a new local day), take the member's conversation lock and read the
flow state under it, and read the member's ticket keys (an answer owed, a rating asked for) that every
message's handlers would otherwise each ask for.

One at a time these were five commands, each a round trip that costs the worker more CPU than the
command costs Redis. A retry stops at the claim: nothing else is touched, as before.

The claim and the lock are leases (DELIVERY_LEASE), renewed by the pipeline while the work runs: a script
that Redis runs after its sender gave up (a stall past the deadline) leaves a claim nobody renews, which
lapses before WeChat's next retry, so that retry processes the message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from bot.inbound.dedupe import DeliveryGuard, Seen
from flows.engine import Conversation, Prefetched
from handlers.core.message import Inbound
from storage import cswindow, tickets
from storage.clock import local_date
from storage.kv import KV, new_token
from storage.members import TOUCH_GRANULARITY, touch_key

# KEYS: delivery, window, touch, lock, flow state, then the keys only read (READ_KEYS: returned after the rest)
# ARGV: claim value (unique to this delivery attempt), claim ms, window mode ("m" a message: set; "e" an
#       event: set unless open; "" none), window quota, window ms, touch ms, token, lock ms
# A key that already holds this attempt's own value counts as taken by it: redis-py sends the script again
# when the connection drops before the answer, and the second run must not take the first run's claim,
# touch or lock for someone else's (the message would go unanswered and the member's lock would stay).
# SET ... NX GET (Redis 7.0) answers false when it set the key, else the value it found; the flow state and
# the read keys come in one MGET (the state is kept only under the lock). Five commands in all: in the
# in-process store (memory://) each command inside a script costs far more than on Redis.
_INTAKE = """
local seen = redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX', 'GET')
if seen and seen ~= ARGV[1] then return {0, seen} end
if ARGV[3] == 'm' then
  redis.call('set', KEYS[2], ARGV[4], 'PX', ARGV[5])
elseif ARGV[3] == 'e' then
  redis.call('set', KEYS[2], ARGV[4], 'PX', ARGV[5], 'NX')
end
local found = redis.call('set', KEYS[3], ARGV[7], 'PX', ARGV[6], 'NX', 'GET')
local touch = (not found or found == ARGV[7]) and 1 or 0
found = redis.call('set', KEYS[4], ARGV[7], 'PX', ARGV[8], 'NX', 'GET')
local locked = (not found or found == ARGV[7]) and 1 or 0
local values = redis.call('mget', unpack(KEYS, 5))
local answer = {1, false, touch, locked, locked == 1 and values[1]}
for i = 2, #values do
  answer[#answer + 1] = values[i]
end
return answer
"""


def read_keys(source: str, openid: str) -> list[str]:
    """The member's keys the intake reads for the handlers (ChatContext.known): a ticket answer owed, a
    rating asked for."""
    return [tickets.notice_key(source, openid), tickets.rate_key(source, openid)]


@dataclass(frozen=True)
class Intake:
    seen: Seen | None  # not None: a retry of a delivery already claimed; nothing else was done
    token: str = ""  # this attempt's claim and lock token (the pipeline renews both with it)
    touch_due: bool = False  # the member's interaction is to be recorded (once a minute)
    prefetched: Prefetched | None = None  # the conversation lock, taken, and the flow state read under it
    known: dict[str, str | None] = field(default_factory=dict)  # read_keys' values, for ChatContext.known


class IntakeScript:
    def __init__(self, kv: KV, guard: DeliveryGuard, conversation: Conversation, tz: ZoneInfo) -> None:
        self.guard = guard
        self.tz = tz
        self.conversation = conversation
        self._script = kv.script(_INTAKE)

    async def take(self, msg: Inbound) -> Intake:
        source, openid = msg.source, msg.openid
        opens = cswindow.opening(msg.is_event, msg.event)
        quota, window, only_if_closed = opens or (0, 0, False)
        mode = "" if opens is None else "e" if only_if_closed else "m"
        token = new_token()
        day = local_date(msg.received_at, self.tz)
        reads = read_keys(source, openid)
        result = await self._script(
            [
                self.guard.key(msg), cswindow.key(source, openid), touch_key(source, openid, day),
                self.conversation.lock_key(msg), self.conversation.store.key(source, openid),
                *reads,
            ],
            [
                self.guard.processing_value(token), _ms(self.guard.processing_ttl), mode, quota, _ms(window),
                _ms(TOUCH_GRANULARITY.total_seconds()), token, _ms(self.conversation.lock_ttl),
            ],
        )
        if not int(result[0]):
            return Intake(self.guard.decode(result[1]))
        locked = int(result[3]) == 1
        prefetched = Prefetched(token, result[4]) if locked else None
        values = list(result[5:]) + [None] * (len(reads) - len(result[5:]))  # a trailing nil ends Redis's list
        known = {key: None if value is None else _text(value) for key, value in zip(reads, values, strict=True)}
        return Intake(None, token=token, touch_due=int(result[2]) == 1, prefetched=prefetched, known=known)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
