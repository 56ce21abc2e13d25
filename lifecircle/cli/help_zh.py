"""The Chinese of the command line's own help: what ``lifecircle … --help`` shows under
``--lang zh`` (or, without ``--lang``, a zh_* locale).

The English stays where it is written (each command's docstring and its options' ``help=``);
this table holds only the Chinese beside it, keyed by command name and parameter name (click's
``param.name``: ``map_html`` for ``--map/--no-map``). ``tests/test_cli_help.py`` checks that every
command and parameter has its Chinese here and that nothing here names a parameter that is gone.
Option names, metavars and values (wgs84, gcj02, zh …) keep their spelling.
"""

from __future__ import annotations

#: typer's words on the help screen and in its error panel (constants of ``typer.rich_utils``).
RICH_WORDS = {
    "ARGUMENTS_PANEL_TITLE": "参数",
    "OPTIONS_PANEL_TITLE": "选项",
    "COMMANDS_PANEL_TITLE": "命令",
    "ERRORS_PANEL_TITLE": "错误",
    "DEFAULT_STRING": "[默认：{}]",
    "REQUIRED_LONG_STRING": "[必填]",
    "ENVVAR_STRING": "[环境变量：{}]",
    "DEPRECATED_STRING": "（已弃用）",
    "ABORTED_TEXT": "已中止。",
    "RICH_HELP": "用 [blue]'{command_path} {help_option}'[/] 查看帮助。",
}

#: The prefix of the usage line (click's ``Usage: ``).
USAGE = "用法："

#: The usage line's pieces (click's words) → Chinese.
USAGE_PIECES = {"[OPTIONS]": "[选项]", "COMMAND [ARGS]...": "命令 [参数]..."}

#: typer's type tags (``<str>``, ``<int range>`` …) → Chinese; others (a choice's name) kept.
TYPES = {"str": "文本", "path": "路径", "float": "数值", "int": "整数", "int range": "整数范围",
         "float range": "数值范围", "bool": "布尔", "text": "文本", "integer": "整数",
         "list[str]": "文本列表"}

#: The help of ``--help`` itself (click's "Show this message and exit.").
HELP_OPTION = "显示此帮助信息并退出。"

_FOLDER = "'analyze'的输出文件夹。"
_OUT = "输出文件夹。"
_LANG = "表格、控制台输出和地图的语言：zh或en（默认与该分析相同）。"
_FORCE = ("允许写入并非lifecircle创建的输出文件夹（或覆盖这样的文件）：只替换lifecircle自己的文件，"
          "其他一概不动。不加此选项时拒绝写入此类目标。")
_VERBOSE = "同时打印每个设施类别的明细表。"
_ORIGINS_CRS = "起点经纬度的坐标系：wgs84、gcj02（高德）或bd09（百度）。"

#: Command name → (its description, {parameter name: its help}); ``""`` is ``lifecircle`` itself.
#: A blank line in a description separates its first paragraph (the one in the command list).
COMMANDS: dict[str, tuple[str, dict[str, str]]] = {
    "": ("十五分钟社区生活圈分析。", {
        "version": "显示版本号并退出。",
        "lang": "帮助和命令输出的语言：zh或en。",
    }),
    "analyze": (
        "分析一个片区：计算每处住宅到各类设施的步行时间。\n\n"
        "结果写入OUT（表格、GeoPackage、map.html）；若当前文件夹下有maps/文件夹，地图还会复制一份为"
        "maps/<OUT的文件夹名>.html（只会替换lifecircle自己写出的副本）。", {
            "source": "OSM文件（.osm.pbf/.osm/.osm.bz2），或用'place:地名'从OSM下载一个地点"
                      "（需联网；不带该前缀的名称视为文件）。",
            "out": _OUT,
            "boundary": "研究范围的边界面（GeoJSON/GeoPackage/Shapefile，任意坐标系）。",
            "boundary_crs": "边界经纬度的坐标系：wgs84、gcj02（高德）或bd09（百度）。",
            "profile": "指标体系名称（default、gb50180-2018、tdt1062-2021）或YAML文件。",
            "speed": "步行速度，单位km/h（默认4）。",
            "lang": "表格、控制台输出和地图的语言：zh或en（默认按系统区域设置：zh_* 为zh，否则为en）。",
            "facilities": "补充设施表（CSV/XLSX，如高德或百度POI），列为：name、lng与lat（或一个'lng,lat'"
                          "位置列），以及类型（类别id、高德typecode或百度分类）。也能识别“名称”“经度”“纬度”"
                          "“类别”等中文表头。",
            "facilities_crs": "设施表的坐标系：wgs84、gcj02或bd09。",
            "population": "社区人口总数：带人口列的面；每个面内住宅的人口按该面的总数缩放（面内没有住宅时"
                          "补一处代表住宅）。",
            "population_column": "--population 中存放居民人数的列。",
            "population_crs": "--population 面的坐标系：wgs84、gcj02或bd09。",
            "population_raster": "人口栅格GeoTIFF（WorldPop/GHSL，每格人数），按建筑面积分配到住宅。",
            "crs": "计算用的米制坐标系：utm（默认）、cgcs2000或EPSG代码。",
            "complete": "数据完整（经实地调查）的类别：数据中没有即确实没有，是真实的缺口。其他类别若数据中"
                        "没有任何设施，显示为“无数据”，而不是0%。",
            "force": _FORCE,
            "verbose": _VERBOSE,
            "map_html": "写出map.html（--no-map：只写表格；之后可用'lifecircle map DIR'绘制地图）。",
            "metrics": "住宅表中每个类别的指标，须给出完整列表（默认time,count：到最近设施的分钟数t_，"
                       "以及设施数量n5_/n10_/n15_）。可选：kmean（k_，到最近20处的平均分钟数）、decay"
                       "（g_，距离衰减加权数量）、sfca（a_，2SFCA供需比）；例如 --metrics time,count,sfca，"
                       "或'all'。每项指标占用的内存与分钟数相当。",
        }),
    "demo": (
        "用自带的示例数据离线运行分析：南京新街口（默认，中文输出）或赫尔辛基；结果写入out/<sample>/，"
        "地图复制一份到maps/<sample>.html。", {
            "sample": "示例：xinjiekou（南京新街口，2021年，中文输出）或helsinki（赫尔辛基）。",
            "out": "输出文件夹（默认out/<sample>）。",
            "lang": "表格、控制台输出和地图的语言：zh或en（默认：xinjiekou为zh，其他按系统区域设置）。",
            "verbose": _VERBOSE,
            "force": _FORCE,
        }),
    "map": (
        "为分析结果文件夹生成交互式规划地图（可离线打开）。", {
            "folder": _FOLDER,
            "out": "HTML文件（默认DIR/map.html）。",
            "lang": _LANG,
            "basemap": "可选的在线底图图层（打开地图时不显示）：osm、cartodb、blank、amap（GCJ-02）或tianditu"
                       "（需设置TIANDITU_KEY）。",
            "offline": "生成单个自包含文件（默认），或从CDN引用Leaflet。",
            "origins": "要绘制等时圈的起点（GeoJSON/GPKG，或含经纬度的CSV；'name'列作为起点名称）。",
            "origins_crs": _ORIGINS_CRS,
            "service": "同时按维度绘制15分钟沿街服务范围。",
            "resources": "'resources'的输出文件夹：在地图上显示其中的闲置用地。",
            "force": _FORCE,
            "recommend": "recommendations.csv（或其所在文件夹）：在地图上显示带编号的推荐选址。",
        }),
    "isochrones": (
        "步行等时圈（以及服务范围和缺口范围），输出为GeoPackage。", {
            "folder": _FOLDER,
            "origins": "起点（GeoJSON/GPKG，或含经纬度的CSV）；name列作为起点名称。",
            "origins_crs": _ORIGINS_CRS,
            "communities": "每个社区取一个起点（社区内的一点）。",
            "homes": "在范围内均匀选取N处住宅作为起点（每隔k处取一处）。",
            "minutes": "时间阈值（分钟），如5,10,15。",
            "out": "GeoPackage文件（默认DIR/isochrones.gpkg）。",
            "force": _FORCE,
            "lang": "控制台输出和自动生成的起点名称的语言：zh或en（默认与该分析相同）。",
        }),
    "resources": (
        "在地资源清单：闲置用地，以及它们可以弥补的步行可达缺口。", {
            "folder": _FOLDER,
            "out": "输出文件夹（CSV、XLSX、GeoPackage）。",
            "sites": "实地调查的用地（含lng/lat或wkt的CSV/XLSX、GeoJSON、GeoPackage、Shapefile）。",
            "sites_crs": "用地文件的坐标系：wgs84、gcj02或bd09。",
            "lang": _LANG,
            "corners": "根据几何形状识别“金角银边”（边角余地）。",
            "corner_min": "边角余地的最小面积，m²。",
            "corner_max": "边角余地的最大面积，m²。",
            "force": _FORCE,
        }),
    "recommend": (
        "为一类设施选出K处闲置用地，使新增覆盖的居民最多（最大覆盖选址模型MCLP）。", {
            "folder": _FOLDER,
            "category": "设施类别的id或名称，中英文均可（幼儿园、kindergarten）；多个类别可重复此选项。",
            "k": "要选出的用地数。",
            "out": _OUT,
            "sites": "补充到OSM用地清单中的实地调查用地。",
            "sites_crs": "调查用地的坐标系：wgs84、gcj02或bd09。",
            "lang": _LANG,
            "method": "求解方法：auto（自动）、exact（精确求解，PuLP/CBC）或greedy（贪心）。",
            "force": _FORCE,
        }),
    "check": (
        "按GB 50180-2018或TD/T 1062-2021对分析结果做配套设施达标评估。", {
            "folder": _FOLDER,
            "standard": "评估标准：gb50180-2018或tdt1062-2021。",
            "out": "输出文件夹（compliance.csv、.xlsx、_map.html）。",
            "lang": _LANG,
            "min_share": "必配设施在其服务半径内须覆盖的居民比例（0-1），达到该比例该层级才算达标。",
            "force": _FORCE,
        }),
    "batch": (
        "用Dask运行批量配置中的每个片区；写出各片区的文件夹、districts.csv/.xlsx、failures.csv和"
        "index.html。", {
            "config": "批量配置文件（TOML或YAML）：数据源、片区、指标体系、输出。",
            "workers": "本机Dask工作进程数（默认每个CPU核一个）。",
            "scheduler": "正在运行的Dask调度器地址，如tcp://10.0.0.5:8786（各工作进程须能读到同样的文件）。",
            "resume": "跳过在相同配置哈希下已有输出的片区。",
            "force": _FORCE,
            "lang": "仅用于帮助的语言（--help --lang zh）：批量运行的语言由配置文件决定。",
        }),
    "links": (
        "按新增可达居民数（各类别时间阈值内）为候选步行连接（开门、通道、人行天桥）排序；精确计算，"
        "并给出K条的贪心最优组合。", {
            "folder": _FOLDER,
            "out": "输出文件夹（CSV、XLSX、GeoPackage、地图）。",
            "candidates": "规划师绘制的候选连线：GeoJSON/GeoPackage/Shapefile，或含wkt或"
                          "lng1,lat1,lng2,lat2列的CSV/XLSX；'name'列会保留到结果中。",
            "coords": "候选文件的坐标系：wgs84、gcj02或bd09。",
            "auto": "同时从数据中找出候选连接：居住用地内或上锁大门后的专用道路，以及缺失的连接"
                    "（直线距离≤150 m，而现在的步行路程≥直线距离的4倍）。",
            "close_gates": "把公共道路上的专用或上锁大门视为不能步行穿过（分析本身按可穿过计算）；每个大门"
                           "都成为重新开放的候选，所有增益都相对于这一路网计算。",
            "k": "贪心最优组合的连接条数（考虑各条连接效果的重叠）。",
            "snap": "连接端点距最近的可步行道路超过此距离（米）时只报告、不计分。",
            "lang": "表头和地图标注的语言：zh或en（默认与该分析相同）。",
            "basemap": "地图底图：osm、cartodb、blank、amap、tianditu。",
            "force": _FORCE,
        }),
}
