"""Every Chinese string the simulator page shows (the page's own words; the bot's replies are the bot's)."""

from __future__ import annotations

TITLE = "微信对话模拟器"
ACCOUNT_NAME = "会员俱乐部（演示）"
INPUT_PLACEHOLDER = "输入消息，例如：注册、签到、积分、兑换"
SEND = "发送"
MEMBER = "当前成员"
NEW_MEMBER = "新成员"
MANAGER = "演示社群经理"
FOLLOW = "关注"
UNFOLLOW = "取消关注"
SCAN = "扫码"
SCAN_PLACEHOLDER = "场景值，如 ref_ABC123、camp_… 或 chan_…"
IMAGE = "发图片"
LOCATION = "发位置"
LOCATION_LABEL = "演示门店附近"
TRAVEL = "时间旅行"
TRAVEL_HINT = "以所选时间运行一个定时任务（演示模式）"
TRAVEL_RUN = "运行"
TRAVEL_DONE = "任务 {job} 已按 {at} 运行：处理 {handled} 条，发出推送 {sent} 条"
NO_REPLY = "（公众号未回复：success）"
TRANSFER = "（已转接人工客服）"
IMAGE_REPLY = "［图片］"
QR_CODE = "［二维码］"
MODE_SAFE = "安全模式（加密）"
MODE_PLAIN = "明文模式"
ERROR = "出错了：{detail}"
CHANNELS = {
    "reply": "被动回复",
    "cs": "客服消息",
    "template": "模板消息",
    "subscribe": "订阅消息",
}
