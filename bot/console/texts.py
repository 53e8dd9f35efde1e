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
