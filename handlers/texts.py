"""Every member-facing string, in Simplified Chinese, in one place. Code and logs stay English."""

from __future__ import annotations

from storage import reasons
from storage.enums import CampaignStatus
from storage.errors import DomainError
from storage.reasons import Reason

BRAND = "会员俱乐部"

# The help menu fits who asks (issue 21): at most 12 lines each, grouped; `帮助 更多` lists everything.
HELP_VISITOR_BODY = (
    f"欢迎来到{BRAND}！\n"
    "回复【注册】加入会员，注册即送积分。\n"
    "成为会员后可以：\n"
    "· 每天【签到】领积分，连续签到另有奖励\n"
    "· 用积分【兑换】优惠券和礼品\n"
    "· 领生日礼、升级会员等级，参加社群【活动】\n"
    "【人工】联系人工客服"
)
HELP_MEMBER_BODY = (
    f"{BRAND}会员功能，回复关键词：\n"
    "积分：【签到】领积分｜【积分】余额和等级｜【明细】最近变动\n"
    "兑换：【兑换】积分商城｜【我的券】未使用的券码\n"
    "活动：【活动】进行中的活动｜「参加 活动码」加入\n"
    "服务：【人工】联系人工客服"
)
HELP_VISITOR_FOOT = "回复【帮助 更多】查看全部功能。"
HELP_MEMBER_FOOT = "随时回复【取消】退出当前操作；回复【帮助 更多】查看全部功能。"
HELP_VISITOR = f"{HELP_VISITOR_BODY}\n{HELP_VISITOR_FOOT}"
HELP_MEMBER = f"{HELP_MEMBER_BODY}\n{HELP_MEMBER_FOOT}"
HELP_STAFF_LINE = ("社群运营：【发起活动】｜「活动数据 活动码」看进度｜「结束活动 活动码」提前结束｜"
                   "「推送活动 活动码 [等级]」推送给会员｜【数据概览】昨日数据")
HELP_MORE = (
    f"{BRAND}全部功能，回复以下关键词：\n"
    "【注册】加入会员，送积分\n"
    "【签到】每日签到领积分\n"
    "【积分】查看余额、等级和即将过期的积分\n"
    "【明细】最近 10 笔积分变动\n"
    "【兑换】用积分兑换优惠券；「兑换 编号」直接选择\n"
    "【我的券】查看未使用的券码\n"
    "【活动】正在进行的社群活动，回复「参加 活动码」加入\n"
    "【邀请】我的邀请码和专属二维码；「邀请 活动码」邀请好友参加活动\n"
    "【退订】不再接收营销消息（回复「订阅」恢复）\n"
    "【我的数据】查看我们保存的信息；【注销】注销会员\n"
    "【人工】联系人工客服\n"
    "任何时候回复【取消】可退出当前操作。"
)


def help_menu(*, member: bool, staff: bool, more: bool = False) -> str:
    """The menu for who asks: a visitor's (sign-up first), a member's, plus staff commands for staff."""
    if more:
        return HELP_MORE + ("\n" + HELP_STAFF_LINE if staff else "")
    body, foot = (HELP_MEMBER_BODY, HELP_MEMBER_FOOT) if member else (HELP_VISITOR_BODY, HELP_VISITOR_FOOT)
    return "\n".join((body, HELP_STAFF_LINE, foot) if staff else (body, foot))


WELCOME = (
    f"感谢关注{BRAND}！\n"
    "回复【注册】成为会员，立即获得积分；每天回复【签到】领积分，积分可兑换优惠券。\n"
    "回复【帮助】查看全部功能。"
)

WELCOME_BACK = "欢迎回来！回复【签到】领取今日积分，回复【帮助】查看全部功能。"

NON_TEXT = "收到啦！目前我只看得懂文字消息，回复【帮助】查看可以做什么。"
LOCATION = "已收到您的位置。回复【帮助】查看可以做什么。"

TRANSFER_FALLBACK = "正在为您转接人工客服，请稍候。"

CANCELLED = "已取消。回复【帮助】查看全部功能。"
NOTHING_TO_CANCEL = "当前没有进行中的操作。"

BUSY = "上一条消息还在处理中，请稍后再试。"
APOLOGY = "抱歉，系统开小差了，请稍后再试。"
# The message could not even be taken in (the KV did not answer in time): nothing was done, so say so.
RETRY_LATER = "系统繁忙，这条消息没有处理，请稍后再试。"

error_generic = "操作未能完成，请稍后再试。"
error_not_found = "没有找到相关内容。"
error_conflict = "该操作已处理过。"


def text_for(key: str) -> str:
    """The text behind a DomainError's text_key (ERROR_TEXTS, at the end of this module); a unit test
    holds every DomainError to having one, so the generic fallback is for keys no error declares."""
    return ERROR_TEXTS.get(key, error_generic)


def domain_text(exc: DomainError) -> str:
    """What a member is told when the domain refuses: the error's text filled with its details."""
    template = text_for(exc.text_key)
    try:
        return template.format(**exc.details)
    except (KeyError, IndexError, ValueError):
        return template

# --- membership -----------------------------------------------------------------------------
JOIN_FIRST = "您还不是会员哦。回复【注册】加入会员，注册即送 {bonus} 积分！"
already_member = "您已经是会员啦！回复【积分】查看余额，回复【签到】领取今日积分。"
SIGNUP_ASK_PHONE = "欢迎加入会员！请回复您的手机号（11 位中国大陆手机号），随时回复【取消】退出。"
SIGNUP_BAD_PHONE = "手机号格式不对哦，请回复 11 位中国大陆手机号，例如 13800138000。回复【取消】退出注册。"
phone_taken = "该手机号已绑定其他会员，请换一个手机号，或回复【人工】联系客服。"
# In the chat the member stays at the phone step: say what they can do next.
SIGNUP_PHONE_TAKEN = "该手机号已绑定其他会员。请回复另一个手机号继续注册，或回复【取消】退出；如有疑问回复【人工】。"
SIGNUP_ASK_BIRTHDAY = (
    "请回复您的生日，生日当天可领 {points} 积分生日礼。\n"
    "格式：1990-05-20、05-20 或 5月20日；不想填写请回复【跳过】。"
)
SIGNUP_BAD_BIRTHDAY = "没看懂这个日期，请按 1990-05-20、05-20 或 5月20日 的格式回复，或回复【跳过】。"
SIGNUP_ASK_CONSENT = (
    "最后一步：请阅读《会员隐私说明》（版本 {version}）：\n"
    "我们保存您的手机号（加密存储）、生日和积分记录，仅用于会员积分、生日礼和权益通知；"
    "您可随时回复【我的数据】查看、回复【注销】删除，回复【退订】停止营销消息。\n"
    "有好友的邀请码？可先回复邀请码（没有可忽略）。\n"
    "同意请回复【同意】，不同意请回复【取消】。"
)
SIGNUP_REFERRAL_OK = "已记录好友（邀请码 {code}）的邀请，注册完成后好友将获得奖励。请回复【同意】完成注册。"
SIGNUP_REFERRAL_OWN = "这是您自己的邀请码，不能邀请自己哦。本次注册不使用邀请码，请回复【同意】继续注册。"
SIGNUP_REFERRAL_UNKNOWN = "没有找到邀请码 {code}，请核对后重新回复；没有邀请码可直接回复【同意】继续注册。"
SIGNUP_REFERRAL_FULL = "邀请码 {code} 的主人本月邀请名额已满，本次注册不使用邀请码。请回复【同意】继续注册。"
SIGNUP_REFERRAL_KNOWN = "已记录您的邀请人，无需再填邀请码。请回复【同意】完成注册。"
SIGNUP_NEED_CONSENT = "需要您回复【同意】才能完成注册；不想注册请回复【取消】。"
SIGNUP_DONE = (
    "注册成功，欢迎成为{brand}会员！\n"
    "已赠送 {bonus} 积分，当前积分 {balance}。\n"
    "您的邀请码：{code}，好友扫码或注册时使用您的邀请码，您可获得 {referral} 积分。\n"
    "每天回复【签到】领积分，回复【帮助】查看全部功能。"
)
REFERRAL_NOTED = "您正在接受好友邀请，完成注册后好友将获得奖励。回复【注册】立即加入！"

# --- sharing (邀请) -------------------------------------------------------------------------------
INVITE = (
    "您的邀请码：{code}\n"
    "您的专属邀请二维码：{qr}\n"
    "好友扫码关注并注册，或注册时输入您的邀请码，您可获得 {referral} 积分（每月最多 {limit} 位好友）。"
)
INVITE_QR_UNTIL = "（二维码有效期至 {until}）"
INVITE_QR_DEMO = "demo://qr/ref_{code}（演示模式：未调用微信接口，二维码为占位图）"
INVITE_QR_FAILED = "（二维码暂时生成失败，可先把邀请码发给好友）"
CAMPAIGN_INVITE = (
    "活动「{title}」的专属邀请二维码：{qr}\n"
    "好友扫码参加活动，将记为您的邀请；也可让好友回复【参加 {code}】。"
)
CAMPAIGN_INVITE_DEMO = "demo://qr/{scene}（演示模式：未调用微信接口，二维码为占位图）"

# --- points -------------------------------------------------------------------------------------
CHECKIN_DONE = "签到成功！+{points} 积分{bonus}\n已连续签到 {streak} 天，当前积分 {balance}。"
CHECKIN_STREAK_BONUS = "，连续签到奖励 +{bonus}"
CHECKIN_CAPPED = "\n（今日非消费积分已达上限 {cap}，超出部分未发放）"
CHECKIN_BOOST = "\n{name}：签到积分 {factor} 倍，本次 +{points}"
# 积分 and 签到 on a day with a multiplier (one line; several rules are joined by MEMBER_DAY_JOIN).
MEMBER_DAY = "今天是【{name}】：{earnings}积分 {factor} 倍"
MEMBER_DAY_JOIN = "；"
EARNING_LABELS = {"checkin": "签到", "purchase": "消费"}
EARNING_JOIN = "、"
CHECKIN_ALREADY = "今天已经签过到啦，明天再来！已连续签到 {streak} 天，当前积分 {balance}。"
TIER_UP = "\n恭喜！您已升级为【{tier}】会员，消费积分享 {multiplier} 倍。"
BALANCE = (
    "您的积分：{balance}\n会员等级：{tier}{progress}\n{expiring}\n"
    "回复【明细】查看积分变动，回复【兑换】用积分换好礼。"
)
BALANCE_PROGRESS = "（再获得 {gap} 积分升级为{next}）"
BALANCE_TOP = "（已是最高等级）"
BALANCE_EXPIRING = "{points} 积分将于 {date} 到期，请尽快使用。"
BALANCE_NO_EXPIRING = "近 30 天内没有即将过期的积分。"
HISTORY_EMPTY = "还没有积分变动记录。回复【签到】领取今日积分吧！"
HISTORY_HEAD = "最近的积分变动："
HISTORY_LINE = "{date} {label} {delta:+d}"
HISTORY_BOOST = "（{name}）"  # after the label of a multiplied earning
KIND_LABELS = {
    "signup": "注册奖励", "referral": "邀请奖励", "checkin": "签到", "streak": "连签奖励",
    "birthday": "生日礼", "campaign": "活动奖励", "winback": "回归奖励", "purchase": "消费",
    "refund": "退款扣回", "redeem": "兑换", "cancel": "兑换取消退回", "expire": "积分过期",
    "adjust": "积分调整", "survey": "问卷感谢",
}
# A ledger row's reason, stored as a code (storage/reasons.py) and put into words here; see ledger_reason.
LEDGER_REASONS: dict[str, str] = {
    Reason.SIGNUP: "注册会员奖励", Reason.REFERRAL: "邀请好友注册奖励", Reason.CHECKIN: "每日签到",
    Reason.STREAK: "连续签到 {days} 天奖励", Reason.WINBACK: "回归礼", Reason.CAMPAIGN: "活动奖励：{title}",
    Reason.PURCHASE: "消费 {yuan} 元", Reason.REFUND: "退款 {yuan} 元", Reason.REDEEM: "兑换 {reward}",
    Reason.REDEEM_CANCELLED: "兑换取消，积分退回", Reason.BIRTHDAY: "{year} 年生日礼",
    Reason.EXPIRE: "{earned} 获得的积分于 {day} 到期", Reason.SURVEY: "满意度调查感谢：{name}",
}


LEDGER_BOOST = "（{name}）"  # a multiplied earning: the rule's name after the reason's words


def ledger_reason(stored: str) -> str:
    """What a ledger row's reason says: a code in words, free text (rows older than the codes, an operator's
    typed reason) as it is, and so is a code whose facts do not fit its text. A multiplied earning
    (the `boost` fact: the multiplier's name) says which multiplier after the words."""
    parsed = reasons.parse(stored)
    if parsed is None:
        return stored
    code, facts = parsed
    boost = facts.pop(reasons.BOOST, None)
    try:
        words = LEDGER_REASONS[code].format(**facts)
    except (KeyError, IndexError, ValueError):
        return stored
    return words + LEDGER_BOOST.format(name=boost) if isinstance(boost, str) and boost else words


def boost_of(stored: str) -> str | None:
    """The multiplier named by a ledger row's reason (None for an ordinary earning)."""
    parsed = reasons.parse(stored)
    boost = parsed[1].get(reasons.BOOST) if parsed else None
    return boost if isinstance(boost, str) and boost else None


insufficient_points = "积分不足：需要 {needed} 积分，当前 {balance}，还差 {missing} 积分。"

# --- member rights -----------------------------------------------------------------------------
OPTED_OUT = "已为您退订营销消息，我们不会再推送活动和提醒。回复【订阅】可随时恢复。"
OPTED_IN = "已恢复订阅，您将收到生日礼、积分到期提醒和会员活动消息。回复【退订】可随时停止。"
MYDATA = (
    "我们保存的您的信息：\n"
    "手机号：{phone}\n生日：{birthday}\n注册时间：{joined}\n隐私说明版本：{consent}\n"
    "会员等级：{tier}\n当前积分：{balance}（共 {entries} 条积分记录）\n"
    "营销消息：{marketing}\n邀请码：{code}\n"
    "回复【注销】可删除会员信息。"
)
MYDATA_VISITOR = "您还不是会员，我们只保存了您的微信标识和最近一次互动时间。回复【注册】加入会员。"
NOT_SET = "未填写"
MARKETING_ON = "接收中"
MARKETING_OFF = "已退订"
DELETE_CONFIRM = (
    "确定要注销会员吗？注销后手机号、生日等信息将被删除，"
    "剩余 {balance} 积分和未使用的券将作废，且无法恢复。\n"
    "确认请回复【确认注销】，回复【取消】放弃。"
)
DELETE_NEED_CONFIRM = "如需注销请回复【确认注销】，不注销请回复【取消】。"
DELETED = "您的会员信息已删除。感谢您的陪伴，随时欢迎回来，回复【注册】即可重新加入。"

# --- redemption ----------------------------------------------------------------------------------
REDEEM_EMPTY = "积分商城暂时没有可兑换的礼品，请稍后再来看看。"
REDEEM_HEAD = "您的积分：{balance}。可兑换的礼品："
REDEEM_LINE = "{n}. {name}  {cost} 积分{note}"
REDEEM_NOTE_SHORT = "（还差 {missing}）"
REDEEM_NOTE_SOLD_OUT = "（已兑完）"
REDEEM_FOOT = "回复编号选择礼品，例如回复 1；回复【取消】退出。"
REDEEM_CHOOSE_AGAIN = "您可以回复其他礼品的编号（1-{count}），回复【兑换】再看列表，或回复【取消】退出。"
REDEEM_MORE = "回复【下一页】查看更多。"
REDEEM_NO_MORE = "已经是最后一页了，回复编号选择礼品，或回复【取消】退出。"
REDEEM_BAD_CHOICE = "请回复列表中的编号（1-{count}），或回复【取消】退出。"
REDEEM_NO_SUCH_ITEM = "没有编号为 {n} 的礼品。回复【兑换】查看礼品列表。"
REDEEM_QUOTE = (
    "您选择了：{name}\n{description}\n需要 {cost} 积分，兑换后剩余 {after} 积分。\n"
    "确认兑换请回复【是】，放弃请回复【否】（5 分钟内有效）。"
)
REDEEM_PRICE_CHANGED = "该礼品的兑换积分刚刚调整为 {cost}，本次未扣除积分。"
REDEEM_CONFIRM_AGAIN = "请回复【是】确认兑换，或回复【否】放弃。"
REDEEM_DECLINED = "已放弃兑换，积分未扣除。回复【兑换】可以重新选择。"
REDEEM_DONE = (
    "兑换成功！{name}\n券码：{code}\n有效期至 {expires}\n{usage}\n"
    "已扣除 {cost} 积分，剩余 {balance} 积分。回复【我的券】可随时查看。"
)
USAGE_COUPON = "结账时向店员出示券码即可使用。"
USAGE_GIFT = "请凭提货码到门店领取礼品。"
USAGE_POOL = "结账时出示券码即可使用。"
REDEEM_ALREADY_DONE = (
    "这次兑换已经完成，不会重复扣分。\n{name}\n券码：{code}\n有效期至 {expires}\n回复【我的券】可随时查看。"
)
quote_expired = "报价已超过 5 分钟失效，积分未扣除。请回复【兑换】重新选择。"
insufficient_points_redeem = (
    "积分不足：需要 {needed} 积分，当前 {balance}，还差 {missing} 积分。\n"
    "赚积分的方法：每日【签到】+{checkin}，消费 1 元得 1 积分，邀请好友注册 +{referral}。"
)
out_of_stock = "很抱歉，{name}已经兑完了，积分未扣除。回复【兑换】看看其他礼品。"
limit_reached = "{name}每人限兑 {limit} 次，您已达到上限，积分未扣除。"
tier_too_low = "{name}仅限【{tier}】及以上会员兑换，积分未扣除。"
reward_ended = "{name}的兑换已结束，积分未扣除。回复【兑换】看看其他礼品。"
COUPONS_EMPTY = "您目前没有未使用的券。回复【兑换】用积分兑换优惠券。"
COUPONS_HEAD = "您未使用的券："
COUPONS_LINE = "{name}：{code}（有效期至 {expires}）"

# --- pushes -------------------------------------------------------------------------------------
PUSH_BIRTHDAY = "生日快乐！{brand}送您 {points} 生日积分，已到账，当前积分 {balance}。回复【兑换】挑选礼物吧！"
PUSH_EXPIRY = "温馨提醒：您有 {points} 积分将于 {date} 到期，回复【兑换】及时使用，别浪费哦。"
PUSH_WINBACK = "好久不见！{days} 天内回复【签到】，除签到积分外再送您 {points} 积分回归礼。"
WINBACK_BONUS = "\n欢迎回来！回归礼 +{points} 积分已到账。"
PUSH_WINBACK_WARN = "好久不见，{brand}想您了！回复【签到】领今天的积分，回复【积分】看看您的积分和好礼。"
PUSH_WINBACK_COUPON = "{brand}为您留了一张「{reward}」回归券，券码 {code}，有效期至 {date}。回复【我的券】查看。"

# --- campaigns ------------------------------------------------------------------------------------
CAMPAIGN_KIND_NAMES = {
    "join_bonus": "报名有礼", "group_buy": "拼团", "checkin_challenge": "打卡挑战", "lucky_draw": "抽奖",
}
CAMPAIGN_ASK_KIND = (
    "发起社群活动，请选择类型（回复编号）：\n"
    "1. 报名有礼：每位参加者都获得积分\n"
    "2. 拼团：满 N 人参加后，所有人获得积分\n"
    "3. 打卡挑战：活动期内签到满 K 天的参加者获得积分\n"
    "4. 抽奖：活动结束时抽出 W 位获奖者\n"
    "随时回复【取消】退出。"
)
CAMPAIGN_BAD_KIND = "请回复 1、2、3 或 4 选择活动类型。"
CAMPAIGN_ASK_TITLE = "请回复活动标题（2-20 个字），例如：周末拼团送积分。"
CAMPAIGN_BAD_TITLE = "标题需要 2-20 个字，请重新回复。"
CAMPAIGN_ASK_POINTS = "每位获奖/参加者获得多少积分？请回复 1-1000 的整数。"
CAMPAIGN_BAD_POINTS = "积分需要是 1-1000 的整数，请重新回复。"
# A lucky draw's prize (flows/campaign_create.py): points as before, or an active reward given as a coupon.
CAMPAIGN_ASK_PRIZE = (
    "抽奖的奖品是什么？\n回复【积分】：获奖者获得积分；\n回复礼品编号：每位获奖者获得一张该券。\n{rewards}"
)
CAMPAIGN_PRIZE_LINE = "编号 {id}：{name}（{left}）"
CAMPAIGN_PRIZE_LEFT = "剩余 {left} 张"
CAMPAIGN_PRIZE_UNLIMITED = "不限量"
CAMPAIGN_PRIZE_NONE = "（目前没有可作奖品的礼品，请回复【积分】，或先在后台上架礼品。）"
CAMPAIGN_PRIZE_MORE = "……（仅列出前 {shown} 个，其他礼品也可直接回复编号）"
CAMPAIGN_BAD_PRIZE = "请回复【积分】，或回复上面列表中的礼品编号（数字）。"
CAMPAIGN_PRIZE_AGAIN = "请重新选择奖品：回复【积分】，或回复礼品编号。"
CAMPAIGN_ASK_FALLBACK = (
    "奖品：「{reward}」。若开奖时券已发完或无法发放，获奖者改得多少积分？请回复 1-1000 的整数；"
    "不设补偿请回复 0（届时会通知获奖者并提醒运营补发）。"
)
CAMPAIGN_BAD_FALLBACK = "补偿积分需要是 0-1000 的整数，请重新回复（0 表示不设补偿）。"
CAMPAIGN_GOAL_SHORT = "请回复 1-{left} 的获奖人数，或回复【取消】重新发起、换一个奖品。"
CAMPAIGN_END_EARLIER = "请回复更早的结束时间，例如：3天、12月31日 20:00、2026-12-31。"
CAMPAIGN_ASK_GOAL = {
    "group_buy": "满多少人成团？请回复 2-500 的整数。",
    "checkin_challenge": "活动期内需要签到多少天？请回复 1-60 的整数。",
    "lucky_draw": "抽出几位获奖者？请回复 1-100 的整数。",
}
CAMPAIGN_BAD_GOAL = "请回复 {low}-{high} 的整数。"
CAMPAIGN_ASK_CAP = "最多允许多少人参加？请回复 {low}-10000 的整数。"
CAMPAIGN_BAD_CAP = "人数上限需要是 {low}-10000 的整数，请重新回复。"
CAMPAIGN_ASK_END = "活动什么时候结束？例如：3天、12月31日 20:00、2026-12-31。"
CAMPAIGN_BAD_END = "没看懂结束时间，或时间不在未来 90 天内。请按「3天」「12月31日 20:00」「2026-12-31」的格式回复。"
CAMPAIGN_ASK_ROBOT = "如需在企业微信群里播报进度，请回复群机器人的 key；不需要请回复【跳过】。"
CAMPAIGN_BAD_ROBOT = "机器人 key 只能包含字母、数字和 -，请重新回复，或回复【跳过】。"
CAMPAIGN_SUMMARY = (
    "请确认活动：\n类型：{kind}\n标题：{title}\n{prize_line}{goal_line}"
    "人数上限：{cap}\n结束时间：{ends}\n群播报：{robot}\n最多发放积分（预算）：{budget}\n"
    "确认创建请回复【是】，放弃请回复【否】。"
)
CAMPAIGN_POINTS_LINE = "积分：每人 {points}\n"
CAMPAIGN_COUPON_LINE = "奖品：每位获奖者「{reward}」一张\n补偿积分（发券失败时）：{fallback}\n"
CAMPAIGN_GOAL_LINE = {
    "group_buy": "成团人数：{goal}\n", "checkin_challenge": "签到天数：{goal}\n", "lucky_draw": "获奖人数：{goal}\n",
}
CAMPAIGN_CONFIRM_AGAIN = "请回复【是】创建活动，或回复【否】放弃。"
CAMPAIGN_DECLINED = "已放弃创建活动。"
CAMPAIGN_CREATED = (
    "活动已创建！活动码：{code}\n分享到群里的文字：\n「{title}」回复 参加 {code} 加入活动，{pitch}\n"
    "活动二维码：{qr}\n回复「活动数据 {code}」查看进度，「结束活动 {code}」提前结束。"
)
CAMPAIGN_QR_DEMO = "（演示模式：未调用微信接口，二维码为占位链接）"
CAMPAIGN_PITCH = {
    "join_bonus": "参加即得 {points} 积分！",
    "group_buy": "满 {goal} 人成团，每人得 {points} 积分！",
    "checkin_challenge": "活动期内签到满 {goal} 天得 {points} 积分！",
    "lucky_draw": "活动结束抽 {goal} 位送 {points} 积分！",
    "lucky_draw_coupon": "活动结束抽 {goal} 位各送「{reward}」一张！",
}
CAMPAIGN_JOINED = "已加入活动「{title}」！已有 {count}/{cap} 人参加。\n{next}"
CAMPAIGN_NEXT = {
    "join_bonus": "报名奖励 +{paid} 积分已到账。",
    "group_buy_waiting": "满 {goal} 人成团，还差 {missing} 人，快邀请好友回复「参加 {code}」吧！",
    "group_buy_done": "拼团成功！+{paid} 积分已到账。",
    "checkin_challenge": "活动期内每天回复【签到】，签满 {goal} 天即得 {points} 积分（{ends} 结束）。",
    "lucky_draw": "{ends} 开奖，抽出 {goal} 位各得 {points} 积分，祝您好运！",
    "lucky_draw_coupon": "{ends} 开奖，抽出 {goal} 位各得「{reward}」一张，祝您好运！",
}
campaign_unknown = "没有找到活动码 {code}，请检查后重新回复「参加 活动码」。回复【活动】查看正在进行的活动。"
campaign_full = "活动「{title}」已满 {cap} 人，下次早点来哦。回复【活动】看看其他活动。"
campaign_ended = "活动「{title}」已经结束了。回复【活动】看看其他活动。"
campaign_already_joined = "您已经参加过活动「{title}」啦，等待结果吧！"
draw_prize_unknown = "没有找到编号为 {reward_id} 的礼品。"
draw_prize_ended = "「{name}」已下架或不在兑换期内，不能作为奖品。"
draw_prize_short = "「{name}」只剩 {left} 张，少于 {winners} 位获奖者。"
draw_prize_ends_early = "「{name}」将于 {ends} 下架，早于开奖时间，届时无法发券。"
CAMPAIGN_JOIN_SIGNUP = "参加活动需要先注册会员，注册完成后会自动为您加入活动。"
CAMPAIGNS_NONE = "目前没有进行中的活动，敬请期待。"
CAMPAIGNS_HEAD = "进行中的活动（回复「参加 活动码」加入）："
CAMPAIGNS_LINE = "{code}「{title}」{kind}，{count}/{cap} 人，{ends} 结束"
STAFF_CAMPAIGNS_HEAD = "进行中的活动（回复「活动数据 活动码」查看详情）："
CAMPAIGN_STATS = (
    "活动「{title}」（{code}，{kind}，{status}）\n参加人数：{count}/{cap}\n已发放积分：{paid}\n"
    "剩余预算：{left}\n{prize}结束时间：{ends}\n每日参加：{per_day}\n{money}"
)
# 活动数据 of a coupon draw: the prize, and once drawn, how its winners were paid.
CAMPAIGN_STATS_PRIZE = "奖品：「{reward}」\n"
CAMPAIGN_STATS_DRAWN = "奖品：「{reward}」，已发券 {coupons} 张，改发积分 {points} 位，未能发放 {unpaid} 位\n"
# The money lines of 活动数据 (storage/campaignreport.py): cost = points × the point value; incremental
# sales against non-participants of the same tiers, over the campaign's days and the 14 after.
CAMPAIGN_STATS_MONEY = "积分成本：¥{cost}\n增量销售：{incremental}\nROI：{roi}"
CAMPAIGN_STATS_NONE = "—"
CAMPAIGN_STATUS: dict[str, str] = {CampaignStatus.OPEN: "进行中", CampaignStatus.SETTLED: "已结束"}
CAMPAIGN_ENDED_BY_MANAGER = "活动「{title}」已结束，本次结算发放 {paid} 积分，累计发放 {total} 积分。"
CAMPAIGN_ENDED_DRAW_COUPON = (
    "活动「{title}」已结束并开奖：{coupons} 位获奖者获得「{reward}」，{points} 位因券无法发放改得积分，"
    "{unpaid} 位未能发放（已通知并记入异常队列）。本次结算发放 {paid} 积分。"
)
CAMPAIGN_ALREADY_ENDED = "活动「{title}」此前已经结束。"
PUSH_CAMPAIGN_REWARD = "活动「{title}」奖励 +{points} 积分已到账，感谢参与！"
# A coupon draw's winner (storage/drawprize.py): the coupon; or, when it could not be granted, the fallback
# points, or (no fallback) word that it is recorded and will be made good.
PUSH_DRAW_COUPON = (
    "恭喜您在活动「{title}」中获奖！奖品「{reward}」已发放，券码 {code}，有效期至 {date}。回复【我的券】查看。"
)
PUSH_DRAW_FALLBACK = "恭喜您在活动「{title}」中获奖！奖品「{reward}」已发完，改为赠送您 {points} 积分，已到账。"
PUSH_DRAW_UNPAID = (
    "恭喜您在活动「{title}」中获奖！很抱歉，奖品「{reward}」暂时无法发放，我们已记录，工作人员会尽快为您补发。"
    "如有疑问回复【人工】。"
)
# An operator's adjustment of the member's points (storage/adjustments.py): points carries its sign.
PUSH_POINTS_ADJUSTED = "积分调整 {points:+d}：{reason}。当前积分 {balance}。"
# A coupon given without points (storage/grants.py, the birthday job, a tier upgrade): the code and last day.
PUSH_COUPON_GRANTED = "{brand}送您一张「{reward}」（{reason}），券码 {code}，有效期至 {date}。回复【我的券】查看。"
PUSH_BIRTHDAY_COUPON = (
    "生日快乐！{brand}送您 {points} 生日积分（当前积分 {balance}）和一张「{reward}」，券码 {code}，有效期至 {date}。"
    "回复【我的券】查看。"
)
PUSH_TIER_GIFT = "恭喜升级为{tier}！{brand}送您升级礼「{reward}」，券码 {code}，有效期至 {date}。回复【我的券】查看。"
# An unused coupon lapses in a few days (the coupon_lapse job).
PUSH_COUPON_LAPSE = "温馨提醒：您的「{reward}」（券码 {code}）将于 {date} 到期，请及时使用。回复【我的券】查看。"
ANNOUNCE = {
    "start": "【{title}】开始啦！回复公众号「参加 {code}」加入，{pitch}",
    "progress": "【{title}】已有 {count} 人参加，进度 {stage}%！回复公众号「参加 {code}」加入。",
    "end": "【{title}】已结束，共 {count} 人参加，发放 {paid_out} 积分，感谢大家！",
    "end_coupon": "【{title}】已开奖，共 {count} 人参加，{coupons} 位获奖者获得「{reward}」，感谢大家！",
}
CAMPAIGN_QR_FAILED = "（二维码暂时生成失败，可先分享活动码）"

# --- member service: tickets (issue 18) ----------------------------------------------------------------
TICKET_ASK_CATEGORY = (
    "很抱歉给您带来不便，我们会认真处理。请选择问题类型，回复数字：\n"
    "1 商品｜2 服务｜3 积分与券｜4 配送｜5 其他\n（回复【取消】退出）"
)
TICKET_BAD_CATEGORY = "请回复 1-5 的数字选择问题类型：1 商品｜2 服务｜3 积分与券｜4 配送｜5 其他"
TICKET_ASK_TEXT = "请描述您遇到的问题（可发送文字或图片）："
TICKET_EMPTY_TEXT = "描述不能为空，请用文字或图片说明您遇到的问题："
TICKET_IMAGE_TAKEN = "图片已收到。可继续补充文字说明，或回复【好了】进入下一步。"
TICKET_ASK_ORDER = "如与订单有关，请回复订单号；无关请回复【跳过】。"
TICKET_BAD_ORDER = "没有在您的账户中找到订单「{order}」，请核对后重新回复订单号，或回复【跳过】。"
TICKET_OPENED = "已为您登记工单 {code}（{category}）。我们将在 {due} 前答复您，处理进度可回复【我的工单】查看。"
TICKET_NONE = "您目前没有工单。如需反馈问题，请回复【投诉】或【建议】。"
TICKET_LIST_HEAD = "您的工单："
TICKET_LINE = "{code}｜{category}｜{state}｜{created}"
TICKET_STATES = {"open": "待处理", "answered": "已答复", "resolved": "已解决"}
TICKET_ANSWER = "您的工单 {code} 有新回复：\n{body}"
TICKET_RESOLVED = "您的工单 {code} 已处理完毕。{body}\n请回复数字 1-5 为本次服务评分（5 为非常满意）。"
TICKET_THANKS = "感谢您的评价！我们会继续努力。"
TICKET_LOW_RATING = "很抱歉这次没有让您满意。工单 {code} 已重新打开并转交主管跟进，我们会尽快联系您。"
PUSH_TICKET_ANSWER = TICKET_ANSWER
PUSH_TICKET_RESOLVED = TICKET_RESOLVED
PUSH_TICKET_STAFF = "新工单 {code}（{category}）。回复【工单】查看，「回复 {code} 内容」答复，「解决 {code}」结案。"
ticket_too_many = (
    "您已有 {limit} 个处理中的工单，我们正在加紧处理。如需补充，请回复【我的工单】查看，或回复【人工】联系客服。"
)
ticket_unknown = "没有找到工单 {code}，请核对工单号。"
ticket_resolved = "工单 {code} 已解决，不能再回复或结案。"
ticket_text_invalid = "回复内容不能为空（最多 4000 字）。格式：回复 T-XXXXXX 内容"
STAFF_TICKETS_NONE = "目前没有待处理的工单。"
STAFF_TICKETS_HEAD = "待处理工单（最早的在前）："
STAFF_TICKET_LINE = "{code}｜{category}｜{state}｜已等 {waited}{late}\n  {excerpt}"
STAFF_TICKET_LATE = "｜已超时"
STAFF_ONLY_SERVICE = "只有客服人员可以处理工单。"
STAFF_REPLY_USAGE = "格式：回复 T-XXXXXX 内容"
STAFF_RESOLVE_USAGE = "格式：解决 T-XXXXXX 备注（备注可省略）"
STAFF_ANSWERED = "已回复工单 {code}。"
STAFF_RESOLVED = "工单 {code} 已解决，已请会员评分。"
HAND_OFF_EXCERPT = "（转人工客服）"
IMAGE_EXCERPT = "[图片]"
# --- member service: satisfaction surveys (issue 18) -----------------------------------------------
# Asked only with the reply to the member's own message (never pushed); the NPS question is fixed.
SURVEY_NPS_QUESTION = "您有多大可能把我们推荐给朋友或同事？"
SURVEY_SCALES = {
    "nps": "请回复 0-10 的数字（0 表示完全不可能，10 表示非常可能）",
    "csat": "请回复 1-5 的数字（1 表示很不满意，5 表示非常满意）",
}
SURVEY_ASK = "【满意度调查】{question}\n{scale}，回复【取消】跳过。"
SURVEY_OUT_OF_RANGE = "请回复 {low} 到 {high} 之间的一个数字，回复【取消】跳过。"
SURVEY_LET_GO = "好的，本次调查不打扰您了。需要帮助请回复【帮助】。"
SURVEY_THANKS = "感谢您的评价！"
SURVEY_THANKS_POINTS = "已赠送 {points} 积分表示感谢。"
SURVEY_SORRY = "很抱歉没能让您满意，客服会尽快跟进（工单 {code}）。"
SURVEY_FOLLOWUP = "{question}（直接回复文字即可，回复【取消】跳过）"
SURVEY_FOLLOWUP_THANKS = "收到，谢谢您的宝贵意见！"
SURVEY_DECLINED = "好的，已跳过本次调查。"
SURVEY_FOLLOWUP_SKIPPED = "好的，您的评分已记录，谢谢！"
SURVEY_TICKET_TEXT = "满意度调查「{name}」评分：{score}（{scale}）"
SURVEY_SCALE_NAMES = {"nps": "0-10 推荐意愿", "csat": "1-5 满意度"}

# --- the member code at the till (会员码) -----------------------------------------------------------
MEMBER_CODE = "您的会员码：{code}\n请在 {seconds} 秒内出示给收银员，仅可使用一次。需要新的会员码请再次回复「会员码」。"

# --- a clerk verifies a coupon in the chat (核销 CODE) ---------------------------------------------
CLERK_CONFIRM = (
    "券码 {code}：{reward}\n持有人：{owner}\n有效期至 {expires}\n门店 {store}，回复「是」确认核销，回复「否」放弃。"
)
CLERK_UNKNOWN = "没有找到券码 {code}，请核对后重试。"
CLERK_USED = "券码 {code} 已于 {at} 在门店 {store} 核销，不能重复使用。"
CLERK_CANCELLED = "券码 {code} 已作废，不能核销。"
CLERK_EXPIRED = "券码 {code} 已于 {at} 过期，不能核销。"
CLERK_DONE = "已核销：{code}（{reward}），门店 {store}。"
CLERK_DECLINED = "已放弃核销，券码未使用。"
CLERK_CONFIRM_AGAIN = "请回复「是」确认核销，或「否」放弃。"

# --- domain errors --------------------------------------------------------------------------------
code_used = "该券码已核销，不能重复使用。"
error_invalid = "输入的内容不符合要求，请检查后再试。"  # an operator's adjustment refused (members never meet it)
# Every DomainError's text_key (storage/errors.py and its subclasses) -> what the member is told, filled with
# the error's details. tests/unit/test_error_texts.py fails when an error's key is missing here.
ERROR_TEXTS: dict[str, str] = {
    "error_generic": error_generic, "error_not_found": error_not_found, "error_conflict": error_conflict,
    "already_member": already_member, "phone_taken": phone_taken, "insufficient_points": insufficient_points,
    "out_of_stock": out_of_stock, "limit_reached": limit_reached, "tier_too_low": tier_too_low,
    "reward_ended": reward_ended, "code_used": code_used, "quote_expired": quote_expired,
    "campaign_unknown": campaign_unknown, "campaign_full": campaign_full, "campaign_ended": campaign_ended,
    "campaign_already_joined": campaign_already_joined, "error_invalid": error_invalid,
    "ticket_too_many": ticket_too_many, "ticket_unknown": ticket_unknown, "ticket_resolved": ticket_resolved,
    "ticket_text_invalid": ticket_text_invalid, "draw_prize_unknown": draw_prize_unknown,
    "draw_prize_ended": draw_prize_ended, "draw_prize_short": draw_prize_short,
    "draw_prize_ends_early": draw_prize_ends_early,
}


# --- 数据概览: the headline figures for staff in the chat, and the weekly digest to the operations robot -----
OVERVIEW_HEAD = "数据概览（{day}）"
OVERVIEW_DIGEST_HEAD = "【每周数据】截至 {day}，较上周同日"
OVERVIEW_STALE = "（昨日快照尚未生成，以上为最近一次快照）"
OVERVIEW_NONE = ("还没有数据快照：每天 00:30 自动生成前一天的数据；也可在服务器上运行 "
                 "`wxbot jobs run kpi_snapshot` 立即生成。")
OVERVIEW_FOOT = "详见后台「运营数据看板」/admin"
OVERVIEW_SIZE = "会员 {members}（当日新增 {signups}）｜30 天活跃 {active}"
OVERVIEW_LINE = "{label}：{value}｜目标 {target} {verdict}"
OVERVIEW_CHANGE = "（较上周 {delta}）"
OVERVIEW_MET, OVERVIEW_MISSED = "✓达标", "✗未达标"
OVERVIEW_POINTS = "个百分点"
OVERVIEW_LABELS = {
    "redemption_rate_12m": "积分兑换率（12 个月）",
    "touches_mean": "月均营销触达",
    "push_conversion_7d": "推送 7 日转化率",
    "top1_share_365d": "前 1% 会员销售占比",
    "push_reach": "推送可达率",
    "interactions_per_active": "活跃会员月互动天数",
    "yoy_growth": "会员数同比增长",
}


# --- 推送活动: a manager broadcasts their campaign to members (flows/broadcast_campaign.py) ----------------
CAMPAIGN_PUSH_USAGE = "请回复「推送活动 活动码」推送给全部会员，或「推送活动 活动码 等级」只推送给该等级（{tiers}）。"
CAMPAIGN_PUSH_NOT_OWN = "活动 {code} 不是您发起的，只能推送自己发起的活动。"
CAMPAIGN_PUSH_EVERYONE = "全部会员"
CAMPAIGN_PUSH_CONFIRM = ("将向【{audience}】推送活动「{title}」：预计 {n} 位会员收到"
                         "（另有 {capped} 位本月营销消息已达上限，不会收到），{starts} 开始发送，"
                         "活动截止 {ends} 后不再发送。\n"
                         "回复「是」确认推送，回复「否」放弃。")
CAMPAIGN_PUSH_AGAIN = "请回复「是」确认推送，或回复「否」放弃。"
CAMPAIGN_PUSH_DECLINED = "已放弃推送，没有发送任何消息。"
CAMPAIGN_PUSH_DONE = "已安排推送活动「{title}」（群发 #{id}），将遵守免打扰时段与每月上限分批发出。"
CAMPAIGN_PUSH_REPEATED = "活动「{title}」已向这些会员推送过（群发 #{id}），不会重复推送。"
CAMPAIGN_PUSH_NOBODY = "目前没有可以推送的会员（都已退订、沉睡或本月已达上限）。"
CAMPAIGN_PUSH_TEXT = "【{title}】{kind}进行中，{ends} 截止。回复「参加 {code}」立即参加！"
