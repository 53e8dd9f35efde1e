"""Every member-facing string, in Simplified Chinese, in one place. Code and logs stay English."""

from __future__ import annotations

BRAND = "会员俱乐部"

HELP = (
    f"欢迎来到{BRAND}！回复以下关键词：\n"
    "【注册】加入会员，送积分\n"
    "【签到】每日签到领积分\n"
    "【积分】查看余额、等级和即将过期的积分\n"
    "【明细】最近 10 笔积分变动\n"
    "【兑换】用积分兑换优惠券\n"
    "【我的券】查看未使用的券码\n"
    "【活动】正在进行的社群活动，回复「参加 活动码」加入\n"
    "【退订】不再接收营销消息（回复「订阅」恢复）\n"
    "【我的数据】查看我们保存的信息；【注销】注销会员\n"
    "【人工】联系人工客服\n"
    "任何时候回复【取消】可退出当前操作。"
)

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

error_generic = "操作未能完成，请稍后再试。"
error_not_found = "没有找到相关内容。"
error_conflict = "该操作已处理过。"


def text_for(key: str) -> str:
    """The text behind a DomainError's text_key; unknown keys fall back to the generic apology."""
    value = globals().get(key)
    return value if isinstance(value, str) else error_generic

# --- membership -----------------------------------------------------------------------------
JOIN_FIRST = "您还不是会员哦。回复【注册】加入会员，注册即送 {bonus} 积分！"
already_member = "您已经是会员啦！回复【积分】查看余额，回复【签到】领取今日积分。"
SIGNUP_ASK_PHONE = "欢迎加入会员！请回复您的手机号（11 位中国大陆手机号），随时回复【取消】退出。"
SIGNUP_BAD_PHONE = "手机号格式不对哦，请回复 11 位中国大陆手机号，例如 13800138000。回复【取消】退出注册。"
phone_taken = "该手机号已绑定其他会员，请换一个手机号，或回复【人工】联系客服。"
SIGNUP_ASK_BIRTHDAY = (
    "请回复您的生日，生日当天可领 {points} 积分生日礼。\n"
    "格式：1990-05-20、05-20 或 5月20日；不想填写请回复【跳过】。"
)
SIGNUP_BAD_BIRTHDAY = "没看懂这个日期，请按 1990-05-20、05-20 或 5月20日 的格式回复，或回复【跳过】。"
SIGNUP_ASK_CONSENT = (
    "最后一步：请阅读《会员隐私说明》（版本 {version}）：\n"
    "我们保存您的手机号（加密存储）、生日和积分记录，仅用于会员积分、生日礼和权益通知；"
    "您可随时回复【我的数据】查看、回复【注销】删除，回复【退订】停止营销消息。\n"
    "同意请回复【同意】，不同意请回复【取消】。"
)
SIGNUP_NEED_CONSENT = "需要您回复【同意】才能完成注册；不想注册请回复【取消】。"
SIGNUP_DONE = (
    "注册成功，欢迎成为{brand}会员！\n"
    "已赠送 {bonus} 积分，当前积分 {balance}。\n"
    "您的邀请码：{code}，好友扫码或注册时使用您的邀请码，您可获得 {referral} 积分。\n"
    "每天回复【签到】领积分，回复【帮助】查看全部功能。"
)
REFERRAL_NOTED = "您正在接受好友邀请，完成注册后好友将获得奖励。回复【注册】立即加入！"

# --- points -------------------------------------------------------------------------------------
CHECKIN_DONE = "签到成功！+{points} 积分{bonus}\n已连续签到 {streak} 天，当前积分 {balance}。"
CHECKIN_STREAK_BONUS = "，连续签到奖励 +{bonus}"
CHECKIN_CAPPED = "\n（今日非消费积分已达上限 {cap}，超出部分未发放）"
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
KIND_LABELS = {
    "signup": "注册奖励", "referral": "邀请奖励", "checkin": "签到", "streak": "连签奖励",
    "birthday": "生日礼", "campaign": "活动奖励", "winback": "回归奖励", "purchase": "消费",
    "refund": "退款扣回", "redeem": "兑换", "cancel": "兑换取消退回", "expire": "积分过期",
    "adjust": "人工调整",
}
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
REDEEM_FOOT = "回复编号选择礼品，例如回复 1。"
REDEEM_MORE = "回复【下一页】查看更多。"
REDEEM_NO_MORE = "已经是最后一页了，回复编号选择礼品，或回复【取消】退出。"
REDEEM_BAD_CHOICE = "请回复列表中的编号（1-{count}），或回复【取消】退出。"
REDEEM_NO_SUCH_ITEM = "没有编号为 {n} 的礼品。回复【兑换】查看礼品列表。"
REDEEM_QUOTE = (
    "您选择了：{name}\n{description}\n需要 {cost} 积分，兑换后剩余 {after} 积分。\n"
    "确认兑换请回复【是】，放弃请回复【否】（5 分钟内有效）。"
)
REDEEM_CONFIRM_AGAIN = "请回复【是】确认兑换，或回复【否】放弃。"
REDEEM_DECLINED = "已放弃兑换，积分未扣除。回复【兑换】可以重新选择。"
REDEEM_DONE = (
    "兑换成功！{name}\n券码：{code}\n有效期至 {expires}\n{usage}\n"
    "已扣除 {cost} 积分，剩余 {balance} 积分。回复【我的券】可随时查看。"
)
USAGE_COUPON = "结账时向店员出示券码即可使用。"
USAGE_GIFT = "请凭提货码到门店领取礼品。"
USAGE_POOL = "结账时出示券码即可使用。"
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
