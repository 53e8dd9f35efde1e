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
