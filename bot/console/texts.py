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

# --- rewards, code pools, campaigns, staff (bot/console/rewards.py, campaigns.py, staff.py) --------------
REWARDS_TITLE = "奖品"
REWARD_NEW = "新建奖品"
REWARD_EDIT = "编辑奖品"
REWARD_SAVE = "保存"
REWARD_DEACTIVATE = "下架"
REWARD_CODES = "导入券码"
REWARDS_EMPTY = "还没有奖品。"
REWARD_FIELDS = {
    "id": "编号", "name": "名称", "description": "说明", "cost": "所需积分", "kind": "类型", "stock": "库存",
    "per_member_limit": "每人限兑", "total_limit": "总限量", "min_tier": "最低等级", "validity_days": "券有效天数",
    "starts_at": "上架时间", "ends_at": "下架时间", "active": "上架中", "issued_count": "已兑出",
}
REWARD_HINTS = {"stock": "留空表示不限", "per_member_limit": "留空表示不限", "total_limit": "留空表示不限",
                "min_tier": "留空表示所有等级", "starts_at": "留空表示立即", "ends_at": "留空表示长期"}
REWARD_KINDS = {"coupon": "优惠券（系统生成券码）", "code_pool": "券码池（导入券码）", "gift": "礼品"}
ANY_TIER = "所有等级"
UNLIMITED = "不限"
YES, NO = "是", "否"
ACTIONS = "操作"
FORM_INVALID = "表单有误，请按提示修改后重新提交。未做任何更改。"
REWARD_DONE = {"created": "奖品已创建。", "saved": "奖品已保存。", "deactivated": "奖品已下架。"}
# A field's error, by pydantic's error type (the rule itself lives in bot/api/reward_input.py).
FIELD_ERRORS = {
    "missing": "必填。", "string_too_short": "不能为空。", "string_too_long": "最多 {max_length} 个字。",
    "too_short": "不能为空。", "too_long": "最多 {max_length} 个字。",
    "int_type": "请输入整数。", "int_parsing": "请输入整数。", "greater_than": "必须大于 {gt}。",
    "greater_than_equal": "不能小于 {ge}。", "less_than_equal": "不能大于 {le}。", "literal_error": "请从列表中选择。",
    "tier_unknown": "等级必须是以下之一：{tiers}。", "ends_before_starts": "下架时间必须晚于上架时间。",
    "datetime_parsing": "请输入有效的日期时间。", "datetime_type": "请输入有效的日期时间。",
    "datetime_from_date_parsing": "请输入有效的日期时间。",
}
FIELD_INVALID = "取值无效（不能含有控制字符，日期须在 2000 至 2200 年之间）。"

CODES_TITLE = "导入券码：{name}"
CODES_HINT = "上传 UTF-8 编码的 CSV 文件：第一列为券码，每行一个；首行为 code 时视为表头。每个券码最长 64 个字符。"
CODES_FILE = "CSV 文件"
CODES_UPLOAD = "上传并导入"
CODES_NOT_POOL = "只有「券码池」类型的奖品可以导入券码。"
CODES_IN_POOL = "券码池中可用券码：{available} 个。"
CODES_RESULT = "读取 {received} 行，导入 {added} 个券码，拒绝 {refused} 行。"
CODES_NONE_VALID = "文件中没有可导入的券码，未做任何更改。"
CODES_BAD_FILE = "无法读取文件：请上传 UTF-8 编码、不超过 5 MB 的 CSV 文件。"
CODES_REFUSED = "被拒绝的行"
CODES_LINE, CODES_CODE, CODES_REASON = "行号", "内容", "原因"
CODE_REASONS = {"empty": "券码为空", "too_long": "超过 64 个字符", "nul": "含有空字符（NUL）",
                "duplicate": "与文件中前面的行重复", "taken": "已在券码池中（或已发放）"}

CAMPAIGNS_TITLE = "活动"
CAMPAIGNS_EMPTY = "还没有活动。"
CAMPAIGN_FIELDS = {
    "title": "标题", "code": "活动码", "kind": "类型", "status": "状态", "participants": "参加人数",
    "paid": "已发放 / 预算", "ends_at": "结束时间", "created_by": "发起人", "points": "每人积分", "goal": "目标",
    "cap": "人数上限", "created_at": "发起时间", "settled_at": "结算时间",
}
CAMPAIGN_KINDS = {"join_bonus": "报名有礼", "group_buy": "拼团", "checkin_challenge": "打卡挑战",
                  "lucky_draw": "抽奖"}
CAMPAIGN_STATES = {"open": "进行中", "settled": "已结束"}
CAMPAIGN_JOINS = "每日参加人数"
CAMPAIGN_NO_JOINS = "还没有人参加。"
CAMPAIGN_DAY, CAMPAIGN_COUNT = "日期", "人数"
CAMPAIGN_END = "提前结束并结算"
CAMPAIGN_END_CONFIRM = "确定现在结束该活动并按规则结算吗？此操作不可撤销。"
CAMPAIGN_ENDED = "活动已提前结束并完成结算，累计发放 {total} 积分。"
CAMPAIGN_WAS_ENDED = "该活动此前已经结束，未做任何更改。"

STAFF_TITLE = "员工"
STAFF_HINT = "员工可在公众号聊天中发起和管理社群活动；增删员工会同步微信的员工标签（员工菜单）。"
STAFF_EMPTY = "还没有员工。"
STAFF_FIELDS = {"openid": "OpenID", "role": "角色", "added_by": "添加人", "created_at": "添加时间"}
STAFF_ROLES = {"manager": "社群运营", "admin": "活动管理员"}
STAFF_ADD = "添加员工"
STAFF_SET_ROLE = "修改角色"
STAFF_REMOVE = "移除"
STAFF_REMOVE_CONFIRM = "确定移除该员工吗？"
STAFF_DONE = {"added": "员工已添加。", "changed": "角色已修改。", "removed": "员工已移除。", "same": "角色未变。"}
STAFF_NOT_FOUND = "该 OpenID 不是员工。"
BACK = "返回列表"
