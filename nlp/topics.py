"""The seven topics of the government message board (TipDM's top level) and the department
each goes to by default: a `department` or `question` text is routed by its topic. A city
overrides the map in config (`[triage.departments]`)."""

from __future__ import annotations

TOPICS = ("城乡建设", "劳动和社会保障", "教育文体", "商贸旅游", "环境保护", "卫生计生", "交通运输")
DEFAULT_DEPARTMENTS = {
    "城乡建设": "区住房城乡建设和水利局",
    "劳动和社会保障": "区人力资源和社会保障局",
    "教育文体": "区教育局",
    "商贸旅游": "区市场监督管理局",
    "环境保护": "佛山市生态环境局禅城分局",
    "卫生计生": "区卫生健康局",
    "交通运输": "区交通运输局",
}
