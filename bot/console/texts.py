"""Every operator-facing string of the console, in Simplified Chinese (code and logs stay English)."""

from __future__ import annotations

TITLE = "wxbot 运营后台"

ROLE_NAMES = {"admin": "管理员", "operator": "运营", "analyst": "分析师", "clerk": "店员", "token": "接口令牌",
              "system": "系统"}

SIGN_IN = "登录"
SIGN_OUT = "退出登录"
NAME = "用户名"
PASSWORD = "密码"
SIGN_IN_FAILED = "用户名或密码不正确。"
SIGN_IN_LOCKED = "连续 5 次登录失败，该账号已锁定 15 分钟，请稍后再试。"
SIGNED_OUT = "您已退出登录。"
SESSION_EXPIRED = "登录已过期，请重新登录。"

CSRF_FAILED = "表单已失效（安全校验未通过），请刷新页面后重试。未做任何更改。"
FORBIDDEN = "您的角色（{role}）无权进行此操作，需要以下角色之一：{needed}。"
NOT_FOUND = "没有找到该页面或记录。"
UNAVAILABLE = "数据库或缓存暂时不可用，未做任何更改，请稍后重试。"
BAD_REQUEST = "请求无效：{detail}"
ERROR_TITLE = {403: "无权访问", 404: "未找到", 400: "请求无效", 409: "冲突", 503: "暂不可用"}
BACK_HOME = "返回首页"

NAV = {
    "home": "首页",
    "members": "会员",
    "anomalies": "异常",
    "rewards": "奖品",
    "campaigns": "活动",
    "staff": "员工",
    "pushes": "推送",
    "audit": "审计日志",
    "exports": "导出",
    "verify": "核销",
}
HOME_WELCOME = "欢迎，{name}（{role}）"
HOME_HINT = "从左侧菜单选择要处理的事项。"

# --- anomaly queue (issue 14 item 6) -------------------------------------------------------------------
ANOMALY_KINDS = {
    "daily_cap": "非消费积分超出每日上限",
    "refund_shortfall": "退款扣回积分不足",
    "redeem_spree": "单日兑换次数过多",
    "duplicate_membership": "重复会员（同一 unionid）",
    "job_skipped": "定时任务未补跑",
    "push_uncertain": "推送状态不确定",
}
ANOMALY_STATES = {"open": "待处理", "acknowledged": "已确认", "resolved": "已解决"}
ANOMALIES_TITLE = "异常队列"
ANOMALY_TITLE = "异常 #{id}"
ANOMALY_ANY = "全部"
ANOMALY_KIND = "类型"
ANOMALY_STATE = "状态"
ANOMALY_FROM = "起始日期"
ANOMALY_TO = "截止日期"
ANOMALY_FILTER = "筛选"
ANOMALY_ID = "编号"
ANOMALY_MEMBER = "会员"
ANOMALY_DETAIL = "详情"
ANOMALY_CREATED = "发生时间"
ANOMALY_NOTE = "处理备注"
ANOMALY_HANDLED_BY = "处理人"
ANOMALY_ACKNOWLEDGED_AT = "确认时间"
ANOMALY_RESOLVED_AT = "解决时间"
ANOMALY_NONE = "没有符合条件的异常。"
ANOMALY_NEXT = "下一页"
ANOMALY_FIRST = "回到第一页"
ANOMALY_ACKNOWLEDGE = "确认"
ANOMALY_RESOLVE = "解决"
ANOMALY_NOTE_HINT = "备注（2–500 字）"
ANOMALY_NOTE_INVALID = "请填写 2–500 字的备注。"
ANOMALY_BAD_DATE = "日期格式应为 YYYY-MM-DD。"
ANOMALY_WRONG_STATE = "该异常当前为「{state}」，不能{action}。未做任何更改。"
ANOMALY_ACKNOWLEDGED = "已确认该异常。"
ANOMALY_RESOLVED = "已解决该异常。"
ANOMALY_MERGE = "合并这两个会员…"
ANOMALY_BACK = "返回异常队列"
# The operations WeCom robot's message for a new anomaly (no phone numbers: details never carry one).
ANOMALY_ANNOUNCE = "【运营异常】{label}\n会员：{member}\n处理：{path}\n详情：{detail}"
ANOMALY_NO_MEMBER = "无"

# --- guided merge of a duplicate membership ------------------------------------------------------------
MERGE_TITLE = "合并重复会员"
MERGE_KEEP = "保留会员"
MERGE_DROP = "并入（将被注销）的会员"
MERGE_PREVIEW = "合并预览：以下内容将从会员 {drop} 移到会员 {keep}"
MERGE_LEDGER = "积分流水（全部保留）"
MERGE_LOTS = "有效积分批次"
MERGE_LOT_POINTS = "批次内积分"
MERGE_REDEMPTIONS = "兑换记录"
MERGE_COUPONS = "未使用的券"
MERGE_CAMPAIGNS = "活动参与（移动 / 与保留会员重复而合并）"
MERGE_ORDERS = "订单"
MERGE_CHECKINS = "签到（移动 / 同日重复留在原会员）"
MERGE_OUTBOX = "推送记录"
MERGE_DOORS = "移到保留会员的入口"
MERGE_BALANCE = "合并后余额"
MERGE_TIER = "合并后等级"
MERGE_NOTE = "处理备注（记入异常，2–500 字）"
MERGE_CONFIRM = "确认合并"
MERGE_SWAP = "改为保留会员 {id}"
MERGE_DONE = "已合并：会员 {drop} 并入会员 {keep}，余额 {balance}。"
MERGE_SAME = "保留与并入的会员不能是同一个。"
MERGE_NO_UNIONID = "这两个会员没有相同的 unionid，不能合并。"
MERGE_ALREADY = "会员 {id} 已被合并或注销，不能再合并。"
MERGE_UNKNOWN = "会员 {id} 不存在。"
MERGE_ASK = "请输入两个会员编号。"
MERGE_NONE = "无"
