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

# --- dashboard (issue 15) ------------------------------------------------------------------------------
DASHBOARD_TITLE = "运营数据看板"
DASHBOARD_AS_OF = "数据截至 {day}（每日凌晨生成快照）"
DASHBOARD_EMPTY = "还没有数据快照。快照每天 00:30 生成；也可运行 `wxbot jobs run kpi_snapshot` 立即生成。"
DASHBOARD_RANGE = "时间范围"
DASHBOARD_BAD_RANGE = "时间范围 days={days} 无效：只能是 7、30、90 或 365 天。"
DASHBOARD_RANGES = {7: "近 7 天", 30: "近 30 天", 90: "近 90 天", 365: "近一年"}
DASHBOARD_CHANGE = "较 {days} 天前 {delta}"
DASHBOARD_NO_CHANGE = "较 {days} 天前：无对比数据"
DASHBOARD_TARGET = "目标"
DASHBOARD_AVERAGE = "行业均值"
DASHBOARD_TABLE = "表格视图"
DASHBOARD_DAY = "日期"
DASHBOARD_POINTS = "个百分点"
DASHBOARD_TOUCHES = "近 30 天营销触达次数分布（人数）"
DASHBOARD_UNDELIVERABLE = "当日无法送达的推送（按原因）"
DASHBOARD_NONE = "无"
DASHBOARD_DEMO = "演示数据：以下数字由 `wxbot demo` 生成的模拟会员活动计算得出。"
DIMENSION_NAMES = {"growth": "增长", "spending": "消费", "value": "积分价值", "experience": "会员体验"}
KPI_LABELS = {
    "followers": "关注用户数",
    "members": "会员数",
    "signups": "新增会员",
    "deletions": "注销会员",
    "net_growth": "净增长",
    "referral_share_30d": "推荐注册占比（30 天）",
    "yoy_growth": "会员数同比增长",
    "orders": "会员支付订单",
    "sales_yuan": "会员销售额（元）",
    "aov_yuan": "客单价（元）",
    "repeat_rate_90d": "复购率（90 天）",
    "top1_share_365d": "前 1% 会员销售占比（一年）",
    "points_issued": "发放积分",
    "points_redeemed": "兑换积分",
    "points_expired": "过期积分",
    "redemption_rate_12m": "积分兑换率（12 个月）",
    "coupon_use_rate_12m": "券核销率（12 个月）",
    "liability_points": "未兑积分负债",
    "liability_yuan": "积分负债（元）",
    "expiring_30d": "30 天内到期积分",
    "expiring_60d": "60 天内到期积分",
    "expiring_90d": "90 天内到期积分",
    "expiring_30d_yuan": "30 天内到期（元）",
    "expiring_60d_yuan": "60 天内到期（元）",
    "expiring_90d_yuan": "90 天内到期（元）",
    "active_members": "活跃会员（30 天）",
    "interactions_per_active": "活跃会员月互动天数",
    "touches_share_3_5": "月触达 3–5 次的会员占比",
    "touches_share_0": "月触达 0 次的会员占比",
    "touches_mean": "会员月均营销触达次数",
    "push_reach": "推送可达率",
    "push_conversion_7d": "推送 7 日转化率",
    "undeliverable": "无法送达的推送",
    "open_anomalies": "未处理异常",
    "checkin_participation": "签到参与率",
}
