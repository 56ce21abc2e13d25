"""Facility tables from Amap (高德), Baidu or any other source, and merging them with OSM.

Chinese OSM POI coverage is thin, so planning studies normally take facilities from Amap/Baidu
POI dumps and only the street network from OSM (``shared/design/standards.md`` §6). This module
reads such tables — CSV (UTF-8, UTF-8 with BOM, GBK/GB18030) or XLSX — into a GeoDataFrame of
facility points in WGS-84 with lifecircle category ids:

* coordinates from longitude/latitude columns (``lng``/``lon``/``longitude``/``经度``/``x`` and
  ``lat``/``latitude``/``纬度``/``y``) or one ``location`` column ``"lng,lat"`` as the Amap API
  returns it, converted to WGS-84 from ``crs`` (wgs84 / gcj02 for Amap / bd09 for Baidu);
* the type from an explicit ``category`` column (a profile category id), an Amap ``typecode``
  (6 digits, several joined by ``|``) or a Baidu category string (``"教育培训;小学"``), mapped
  through ``data/poi_mapping.yaml`` (longest prefix wins, name keywords split codes such as
  0903 诊所 into community health centres and stations);
* optionally ``capacity`` (default 1.0).

Unusable rows are dropped and listed in ``result.attrs["dropped"]``; the whole table is refused
(:class:`~lifecircle.errors.TableError`) only when required columns are missing or no row is
usable. :func:`merge_facilities` then unions a table with OSM facilities without counting the
same facility twice.
"""

from __future__ import annotations

import io
import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import yaml

from lifecircle.errors import InputFileError, OptionError, TableError
from lifecircle.io.chinacoords import datum_zh, normalize_crs, out_of_china, to_wgs84
from lifecircle.io.crs import choose_crs
from lifecircle.settings import data_path

__all__ = [
    "PoiMapping",
    "RowReport",
    "load_poi_mapping",
    "read_poi_table",
    "merge_facilities",
    "normalize_name",
    "COLUMN_ALIASES",
]

WGS84 = "EPSG:4326"

#: Accepted header spellings per role (compared after lower-casing and removing spaces, "_",
#: "-", "." and a BOM). ``type`` is ambiguous: values of digits are Amap codes, others Baidu.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("name", "名称", "名字", "poi名称", "poiname", "设施名称", "title", "店名"),
    "lon": ("lng", "lon", "long", "longitude", "经度", "x", "pointx", "wgslng", "gcjlng", "bdlng"),
    "lat": ("lat", "latitude", "纬度", "y", "pointy", "wgslat", "gcjlat", "bdlat"),
    "location": ("location", "lnglat", "lonlat", "经纬度", "坐标", "位置"),
    "category": ("category", "categoryid", "lifecircle", "lifecirclecategory", "设施类别"),
    "typecode": ("typecode", "amaptypecode", "typecodes", "类型编码", "分类编码", "poicode",
                 "高德类型编码", "amapcode"),
    "baidu": ("baiducategory", "baidutag", "tag", "标签", "行业分类", "分类", "百度分类", "类别"),
    "type": ("type", "类型", "poitype", "poi类型"),
    "capacity": ("capacity", "容量", "规模"),
}

_CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
_XLSX_SUFFIXES = {".xlsx", ".xlsm"}
_MAX_REASONS_IN_MESSAGE = 5


class RowReport(list):
    """List of ``{"row": n, "reason": ...}`` dicts kept in ``GeoDataFrame.attrs``.

    pandas deep-copies ``attrs`` on nearly every operation (column access, ``copy``, ``to_crs``);
    with tens of thousands of dropped rows that made each access take a second. This list is
    shared instead of copied: treat it as read-only.
    """

    def __deepcopy__(self, memo):
        return self

    def __copy__(self):
        return self


# --------------------------------------------------------------------------------------------
# mapping
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Entry:
    key: tuple[str, ...]          # Amap: (prefix,); Baidu: levels
    category: str
    regex: re.Pattern | None
    order: int


def _split_baidu(value: str) -> tuple[str, ...]:
    parts = re.split(r"[;；,，|/]", value)
    return tuple(p.strip() for p in parts if p.strip())


@dataclass
class PoiMapping:
    """Amap typecode / Baidu category → category id rules (see ``data/poi_mapping.yaml``)."""

    categories: dict[str, str]                      # category id -> dimension
    amap: list[_Entry] = field(default_factory=list)
    baidu: list[_Entry] = field(default_factory=list)
    source: str = "poi_mapping.yaml"

    @staticmethod
    def _best(candidates: Iterable[_Entry], name: str, depth) -> str | None:
        best, best_key = None, None
        for entry in candidates:
            if entry.regex is not None and not (name and entry.regex.search(name)):
                continue
            key = (entry.regex is not None, depth(entry), -entry.order)
            if best_key is None or key > best_key:
                best, best_key = entry, key
        return None if best is None else best.category

    def amap_category(self, code: str, name: str = "") -> str | None:
        """Category of one 6-digit Amap typecode (``None`` when nothing applies)."""
        cands = (e for e in self.amap if code.startswith(e.key[0]))
        return self._best(cands, name or "", lambda e: len(e.key[0]))

    def baidu_category(self, path: str | tuple[str, ...], name: str = "") -> str | None:
        """Category of a Baidu category string such as ``"医疗;诊所"`` (``None`` when nothing applies)."""
        levels = _split_baidu(path) if isinstance(path, str) else tuple(path)
        cands = (e for e in self.baidu if levels[: len(e.key)] == e.key)
        return self._best(cands, name or "", lambda e: len(e.key))


def _mapping_error(source, problem, zh: str):
    return InputFileError(source, f"POI mapping: {problem}", zh=f"POI 类型映射：{zh}")


def _parse_mapping(doc: Any, source: str) -> PoiMapping:
    if not isinstance(doc, dict):
        raise _mapping_error(source, "expected a mapping with 'categories', 'amap' and 'baidu'",
                             zh="应为含 'categories'、'amap' 和 'baidu' 的映射")
    cats_doc = doc.get("categories")
    categories: dict[str, str] = {}
    if isinstance(cats_doc, dict):
        for dim, ids in cats_doc.items():
            for cid in ids or []:
                categories[str(cid)] = str(dim)
    elif isinstance(cats_doc, list):
        categories = {str(c): "" for c in cats_doc}
    else:
        raise _mapping_error(source, "'categories' must list the category ids (by dimension)",
                             zh="'categories' 须（按维度）列出类别 id")
    mapping = PoiMapping(categories=categories, source=source)
    order = 0
    for section, keyname in (("amap", "prefix"), ("baidu", "path")):
        for i, item in enumerate(doc.get(section) or []):
            where = f"{section} entry {i + 1}"
            where_zh = f"{section} 第 {i + 1} 项"
            if not isinstance(item, dict) or keyname not in item or "category" not in item:
                raise _mapping_error(source, f"{where} needs '{keyname}' and 'category'",
                                     zh=f"{where_zh} 需要 '{keyname}' 和 'category'")
            cat = str(item["category"])
            if cat not in categories:
                raise _mapping_error(source, f"{where}: category '{cat}' is not listed in 'categories'",
                                     zh=f"{where_zh}：类别 '{cat}' 未列在 'categories' 中")
            regex = None
            if item.get("name_regex"):
                try:
                    regex = re.compile(str(item["name_regex"]))
                except re.error as exc:
                    raise _mapping_error(source, f"{where}: bad name_regex ({exc})",
                                         zh=f"{where_zh}：name_regex 无效（{exc}）") from None
            keys = item[keyname] if isinstance(item[keyname], list) else [item[keyname]]
            for key in keys:
                key = str(key).strip()
                if section == "amap":
                    if not key.isdigit() or len(key) > 6:
                        raise _mapping_error(source, f"{where}: prefix '{key}' is not 1-6 digits",
                                             zh=f"{where_zh}：前缀 '{key}' 不是 1-6 位数字")
                    tkey: tuple[str, ...] = (key,)
                else:
                    tkey = _split_baidu(key)
                    if not tkey:
                        raise _mapping_error(source, f"{where}: empty path", zh=f"{where_zh}：路径为空")
                entry = _Entry(tkey, cat, regex, order)
                order += 1
                (mapping.amap if section == "amap" else mapping.baidu).append(entry)
    return mapping


def _default_mapping_path() -> Path:
    return data_path("poi_mapping.yaml")


@lru_cache(maxsize=8)
def _load_mapping_file(path: str) -> PoiMapping:
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFileError(p, "POI mapping file not found", zh="找不到 POI 类型映射文件") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputFileError(p, f"cannot read POI mapping: {exc}", zh=f"无法读取 POI 类型映射：{exc}") from None
    return _parse_mapping(doc, str(p))


def load_poi_mapping(mapping: PoiMapping | dict | str | Path | None = None) -> PoiMapping:
    """The POI mapping: the shipped ``data/poi_mapping.yaml`` by default, or a YAML path, a
    parsed dict of the same structure, or a :class:`PoiMapping` (returned as is)."""
    if isinstance(mapping, PoiMapping):
        return mapping
    if mapping is None:
        return _load_mapping_file(str(_default_mapping_path()))
    if isinstance(mapping, dict):
        return _parse_mapping(mapping, "<mapping dict>")
    return _load_mapping_file(str(Path(mapping).resolve()))


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------

def _norm_header(h: Any) -> str:
    s = unicodedata.normalize("NFKC", str(h)).replace("\ufeff", "").strip().lower()
    return re.sub(r"[\s_\-.()（）]+", "", s)


def _find_columns(columns: list[str], overrides: dict | None, path) -> dict[str, str]:
    found: dict[str, str] = {}
    by_norm: dict[str, str] = {}
    for col in columns:
        by_norm.setdefault(_norm_header(col), col)
    for role, aliases in COLUMN_ALIASES.items():
        for alias in aliases:
            if alias in by_norm:
                found[role] = by_norm[alias]
                break
    for role, col in (overrides or {}).items():
        if role not in COLUMN_ALIASES:
            raise ValueError(f"unknown column role {role!r}; roles: {', '.join(COLUMN_ALIASES)}")
        if col not in columns:
            raise TableError(path, f"column {col!r} given for {role!r} is not in the file; "
                                   f"columns found: {', '.join(map(str, columns))}",
                             zh=f"为 {role!r} 指定的列 {col!r} 不在文件中；文件中的列："
                                f"{', '.join(map(str, columns))}")
        found[role] = col
    return found


def _read_csv(path: Path) -> pd.DataFrame:
    data = path.read_bytes()
    text = None
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    if text is None:  # pragma: no cover - gb18030 decodes almost anything
        raise InputFileError(path, "cannot decode the file as UTF-8 or GBK/GB18030",
                             zh="无法按 UTF-8 或 GBK/GB18030 解码")
    if not text.strip():
        raise TableError(path, "the file is empty", zh="文件为空")
    first = text.splitlines()[0]
    counts = {sep: first.count(sep) for sep in (",", "\t", ";")}
    sep = max(counts, key=counts.get) if max(counts.values()) > 0 else ","
    try:
        return pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                           skip_blank_lines=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise InputFileError(path, f"cannot parse as CSV: {exc}", zh=f"无法解析为 CSV：{exc}") from None


def _read_xlsx(path: Path) -> pd.DataFrame:
    """The first sheet of a workbook that holds anything (``attrs["notes"]`` says which, when
    there are others); a workbook whose every sheet is empty is refused, naming its sheets."""
    try:
        with pd.ExcelFile(path, engine="openpyxl") as book:
            names = book.sheet_names
            for i, sheet in enumerate(names):  # noqa: B007 - i and sheet name the one read
                frame = pd.read_excel(book, sheet_name=sheet, dtype=str, keep_default_na=False)
                if len(frame.columns):
                    break
            else:
                shown = ", ".join(repr(n) for n in names[:4]) + ("…" if len(names) > 4 else "")
                raise TableError(path, f"every sheet of the workbook is empty ({shown})",
                                 zh=f"工作簿的每个工作表都是空的（{shown}）")
            if i > 0:
                empty = ", ".join(repr(n) for n in names[:min(i, 3)]) + ("…" if i > 3 else "")
                frame.attrs["notes"] = [f"{path.name}: read the sheet {sheet!r}, the first with data "
                                        f"({empty} {'is' if i == 1 else 'are'} empty)"]
                frame.attrs["notes_zh"] = [f"{path.name}：读取了第一个有数据的工作表 {sheet!r}（{empty} 为空）"]
            elif len(names) > 1:
                others = ", ".join(repr(n) for n in names[1:4])
                more = "…" if len(names) > 4 else ""
                frame.attrs["notes"] = [f"{path.name}: read the first sheet {names[0]!r} only; "
                                        f"the workbook also has {others}{more}"]
                frame.attrs["notes_zh"] = [f"{path.name}：只读取了第一个工作表 {names[0]!r}；"
                                           f"工作簿中还有 {others}{more}"]
            return frame
    except TableError:
        raise
    except ImportError as exc:  # pragma: no cover
        raise InputFileError(path, f"reading .xlsx needs openpyxl ({exc})",
                             zh=f"读取 .xlsx 需要 openpyxl（{exc}）") from None
    except Exception as exc:  # openpyxl raises many kinds (zipfile.BadZipFile, KeyError, ...)
        raise InputFileError(path, f"cannot read as an Excel workbook: {exc}",
                             zh=f"无法作为 Excel 工作簿读取：{exc}") from None


def _read_frame(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise InputFileError(path, "file not found", zh="找不到文件")
    if path.is_dir():
        raise InputFileError(path, "is a folder, not a table file", zh="是文件夹，不是表格文件")
    suffix = path.suffix.lower()
    try:
        if suffix in _XLSX_SUFFIXES:
            frame = _read_xlsx(path)
        elif suffix == ".xls":
            raise InputFileError(path, "old Excel .xls is not supported: save it as .xlsx or CSV",
                                 zh="不支持旧版 Excel .xls：请另存为 .xlsx 或 CSV")
        elif suffix in _CSV_SUFFIXES or suffix == "":
            frame = _read_csv(path)
        else:
            raise InputFileError(path, f"unknown table kind '{suffix}': use .csv or .xlsx",
                                 zh=f"未知的表格类型 '{suffix}'：请用 .csv 或 .xlsx")
    except PermissionError:
        raise InputFileError(path, "permission denied", zh="没有读取权限") from None
    except OSError as exc:
        raise InputFileError(path, f"cannot read: {exc.strerror or exc}", zh=f"无法读取：{exc.strerror or exc}") from None
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _by_name(profile, text) -> str | None:
    """The id of the profile's category named ``text`` (Chinese or English name, or an id);
    None without a profile that can tell, or when no single category matches."""
    resolve = getattr(profile, "resolve", None)
    if resolve is None or not str(text).strip():
        return None
    try:
        return resolve(str(text))
    except Exception:       # noqa: BLE001 - ProfileError: unknown or ambiguous
        return None


def _profile_categories(profile, mapping: PoiMapping) -> set[str]:
    """Category ids a profile knows: None → the mapping's default ids."""
    if profile is None:
        return set(mapping.categories)
    cats = getattr(profile, "categories", profile)
    if isinstance(cats, dict):
        return {str(k) for k in cats}
    if isinstance(cats, str):
        raise TypeError("profile must be None, an iterable of category ids or an object with "
                        "a 'categories' attribute, not a string")
    ids = set()
    for item in cats:
        if isinstance(item, str):
            ids.add(item)
        elif isinstance(item, dict) and "id" in item:
            ids.add(str(item["id"]))
        elif hasattr(item, "id"):
            ids.add(str(item.id))
        else:
            raise TypeError(f"cannot read a category id from {item!r}")
    return ids


def _with_profile_codes(mapping: PoiMapping, profile) -> PoiMapping:
    """The mapping plus the ``amap_typecodes`` / ``baidu_categories`` a profile declares on its
    categories (lifecircle.core.profiles.Category), so a custom profile's own categories are found.

    The profile's codes are plain entries (no name keyword) listed after the file's entries:
    on equal prefix length the file wins, and name keywords still split codes.
    """
    cats = getattr(profile, "categories", None) if profile is not None else None
    if cats is None or isinstance(cats, (str, dict)):
        return mapping
    extra_amap: list[_Entry] = []
    extra_baidu: list[_Entry] = []
    order = len(mapping.amap) + len(mapping.baidu)
    for cat in cats:
        get = cat.get if isinstance(cat, dict) else (lambda k, c=cat: getattr(c, k, None))
        cid = get("id")
        if not cid:
            continue
        for code in get("amap_typecodes") or ():
            code = str(code).strip()
            if code.isdigit() and len(code) <= 6:
                extra_amap.append(_Entry((code,), str(cid), None, order))
                order += 1
        for path in get("baidu_categories") or ():
            levels = _split_baidu(str(path))
            if levels:
                extra_baidu.append(_Entry(levels, str(cid), None, order))
                order += 1
    if not extra_amap and not extra_baidu:
        return mapping
    return PoiMapping(categories=dict(mapping.categories), amap=mapping.amap + extra_amap,
                      baidu=mapping.baidu + extra_baidu, source=mapping.source)


def _to_float(series: pd.Series) -> np.ndarray:
    s = series.astype(str).str.strip()
    return pd.to_numeric(s.where(s != "", None), errors="coerce").to_numpy(dtype="float64")


def _clean_code(raw: str) -> str:
    code = raw.strip()
    if code.endswith(".0"):
        code = code[:-2]
    if code.isdigit() and len(code) == 5:  # leading zero lost in a spreadsheet
        code = "0" + code
    return code


def _classify_amap(mapping: PoiMapping, raw: str, name: str, cache: dict) -> tuple[str | None, tuple]:
    codes = [_clean_code(c) for c in re.split(r"[|;,，；]", raw) if c.strip()]
    if not codes:
        return None, ("empty Amap typecode", "高德类型代码为空")
    for code in codes:
        if not (code.isdigit() and len(code) == 6):
            return None, (f"typecode '{raw}' is not a 6-digit Amap code", f"类型代码 '{raw}' 不是 6 位高德代码")
    for code in codes:
        key = (code, name)
        if key not in cache:
            cache[key] = mapping.amap_category(code, name)
        if cache[key] is not None:
            return cache[key], ("", "")
    return None, (f"Amap typecode '{raw}' maps to no category", f"高德类型代码 '{raw}' 对应不到任何类别")


def _baidu_or_name(mapping: PoiMapping, raw: str, name: str, profile, column: str) -> tuple[str | None, tuple]:
    """A Baidu category, else the name of one of the profile's categories (类别 = 幼儿园);
    ``column`` is the header the value came from, as the file names it (for the reason)."""
    cat, why = _classify_baidu(mapping, raw, name, column)
    named = _by_name(profile, raw) if cat is None else None
    return (named, ("", "")) if named is not None else (cat, why)


def _classify_baidu(mapping: PoiMapping, raw: str, name: str, column: str) -> tuple[str | None, tuple]:
    # the reason names the column as the file does (a generic 类别 column is not "Baidu's")
    column = str(column).strip()
    if not raw.strip():
        return None, (f"empty {column}", f"{column} 为空")
    cat = mapping.baidu_category(raw, name)
    if cat is None:
        return None, (f"{column} '{raw.strip()}' maps to no category",
                      f"{column} '{raw.strip()}' 对应不到任何类别")
    return cat, ("", "")


def _accepted_message(lang: str = "en") -> str:
    show = lambda role: "/".join(COLUMN_ALIASES[role][:6])  # noqa: E731
    if lang == "zh":
        return (f"可用的列名：经度 {show('lon')}；纬度 {show('lat')}；或一个 'lng,lat' 位置列"
                f"（{show('location')}）；类型：类别（{show('category')}）、高德类型代码"
                f"（{show('typecode')}）、百度分类（{show('baidu')}）或 {show('type')}；"
                f"可选名称（{show('name')}）和容量")
    return (f"accepted: longitude {show('lon')}; latitude {show('lat')}; or one location column "
            f"'lng,lat' ({show('location')}); type: category ({show('category')}), Amap typecode "
            f"({show('typecode')}), Baidu category ({show('baidu')}) or {show('type')}; "
            f"optional name ({show('name')}) and capacity")


def read_poi_table(path: str | Path | pd.DataFrame, profile=None, crs: str = "wgs84", mapping=None,
                   columns: dict[str, str] | None = None, lang: str = "en") -> gpd.GeoDataFrame:
    """Read a facility table (CSV or XLSX) into facility points in WGS-84.

    Parameters
    ----------
    path:
        ``.csv`` (UTF-8, UTF-8 with BOM, or GBK/GB18030; comma, tab or semicolon separated) or
        ``.xlsx`` (first sheet). The first row is the header. Or a DataFrame with the same
        columns (its rows numbered as a file's: the first is row 2), or a GeoDataFrame with
        its CRS set, whose geometry gives the coordinates.
    profile:
        Which category ids are valid: ``None`` (the default profile's ids, listed in
        ``data/poi_mapping.yaml``), an iterable of ids, or an object with a ``categories``
        attribute (a dict keyed by id, or a list of ids / objects with ``id``, such as a
        :class:`lifecircle.core.profiles.Profile`). Rows whose category is not in it are dropped.
        The ``amap_typecodes`` / ``baidu_categories`` its categories declare are added to the
        mapping (after the file's entries), so a custom profile's own categories are found.
    crs:
        Datum of the coordinates: ``"wgs84"`` (OSM, GPS), ``"gcj02"`` (Amap, Tencent) or
        ``"bd09"`` (Baidu); spellings as :func:`lifecircle.io.chinacoords.normalize_crs`.
    mapping:
        POI type mapping: ``None`` for the shipped ``data/poi_mapping.yaml``, a YAML path, a dict
        of the same structure, or a :class:`PoiMapping`.
    columns:
        Explicit column names per role when the headers are unusual, e.g.
        ``{"lon": "POINT_X", "lat": "POINT_Y", "typecode": "高德代码"}``; roles are the keys
        of :data:`COLUMN_ALIASES`.
    lang:
        Language of ``attrs["notes"]`` ("en" or "zh"). Each dropped row's ``reason`` is English
        and its ``reason_zh`` Chinese.

    Returns
    -------
    GeoDataFrame with ``category``, ``name``, ``capacity`` (1.0 when absent), ``source``
    (``"table:<file name>"``), ``row`` (the row's line in the file, or its row in the sheet: the
    header is 1, the first data row 2, as the site reader counts) and ``geometry`` (Points,
    EPSG:4326).
    ``attrs["dropped"]`` lists the rows left out as ``{"row": n, "reason": "..."}``;
    ``attrs["columns"]`` the columns used per role; ``attrs["crs_in"]`` the input datum.

    The type of a row comes from the first non-empty of: ``category`` (a category id), Amap
    ``typecode`` (several codes joined by "|": the first that maps wins), Baidu category, or
    a generic ``type`` column (all digits → Amap code; a category id or name; else Baidu
    category).

    Raises
    ------
    InputFileError
        The file is missing, unreadable or of an unknown kind.
    TableError
        Coordinate or type columns are missing (the message lists the columns found and the
        accepted names), the table has no data rows, or no row is usable (``rows`` holds the
        dropped rows).
    """
    given, path, columns = _table_input(path, columns)
    try:
        datum = normalize_crs(crs)
    except ValueError as exc:
        raise OptionError("--facilities-crs", str(exc),
                          zh=datum_zh(crs)) from None
    poi_map = _with_profile_codes(load_poi_mapping(mapping), profile)
    known = _profile_categories(profile, poi_map)
    frame = _read_frame(path) if given is None else given
    cols = _find_columns(list(frame.columns), columns, path)

    found = ", ".join(repr(c) for c in frame.columns) or "none"
    has_xy = "lon" in cols and "lat" in cols
    if not has_xy and "location" not in cols:
        raise TableError(path, f"no longitude/latitude columns; columns found: {found}; "
                               f"{_accepted_message()}",
                         zh=f"没有经纬度列；文件中的列：{found}；{_accepted_message('zh')}")
    type_roles = [r for r in ("category", "typecode", "baidu", "type") if r in cols]
    if not type_roles:
        raise TableError(path, f"no type column (category, Amap typecode or Baidu category); "
                               f"columns found: {found}; {_accepted_message()}",
                         zh=f"没有类型列（类别、高德类型代码或百度分类）；文件中的列：{found}；"
                            f"{_accepted_message('zh')}")

    # rows that are entirely blank (trailing empty lines, spreadsheet padding) are not data
    text = frame.astype(str).apply(lambda s: s.str.strip())
    blank = (text == "").all(axis=1).to_numpy()
    row_no = np.arange(2, len(frame) + 2)       # the file's line (sheet row): the header is 1
    text = text.loc[~blank]
    row_no = row_no[~blank]
    if len(text) == 0:
        raise TableError(path, "the table has a header but no data rows", zh="表格只有表头，没有数据行")

    n = len(text)
    reasons: list[str] = [""] * n
    reasons_zh: list[str] = [""] * n

    def fail(mask: np.ndarray, make_reason) -> None:
        for i in np.flatnonzero(mask):
            if not reasons[i]:
                reasons[i], reasons_zh[i] = make_reason(i)

    # ---- coordinates ------------------------------------------------------------------------
    if has_xy:
        lon_raw = text[cols["lon"]].to_numpy(dtype=object)
        lat_raw = text[cols["lat"]].to_numpy(dtype=object)
        lon = _to_float(text[cols["lon"]])
        lat = _to_float(text[cols["lat"]])
        if "location" in cols:  # fill blanks from the location column
            loc = text[cols["location"]].str.split(r"[,，;\s]+", n=1, expand=True, regex=True)
            if loc.shape[1] == 2:
                use = (lon_raw == "") & (lat_raw == "")
                lon = np.where(use, _to_float(loc[0].fillna("")), lon)
                lat = np.where(use, _to_float(loc[1].fillna("")), lat)
                lon_raw = np.where(use, loc[0].fillna("").to_numpy(dtype=object), lon_raw)
                lat_raw = np.where(use, loc[1].fillna("").to_numpy(dtype=object), lat_raw)
    else:
        loc_raw = text[cols["location"]].to_numpy(dtype=object)
        parts = text[cols["location"]].str.split(r"[,，;\s]+", n=1, expand=True, regex=True)
        if parts.shape[1] < 2:
            parts[1] = ""
        lon_raw = parts[0].fillna("").to_numpy(dtype=object)
        lat_raw = parts[1].fillna("").to_numpy(dtype=object)
        lon = _to_float(parts[0].fillna(""))
        lat = _to_float(parts[1].fillna(""))
        bad_loc = np.isnan(lon) | np.isnan(lat)
        fail(bad_loc & (loc_raw != ""), lambda i: (f"location '{loc_raw[i]}' is not 'lng,lat'",
                                                          f"位置 '{loc_raw[i]}' 不是 'lng,lat' 格式"))
    fail((lon_raw == "") | (lat_raw == ""), lambda i: ("no coordinates", "没有坐标"))
    fail(np.isnan(lon), lambda i: (f"longitude '{lon_raw[i]}' is not a number", f"经度 '{lon_raw[i]}' 不是数字"))
    fail(np.isnan(lat), lambda i: (f"latitude '{lat_raw[i]}' is not a number", f"纬度 '{lat_raw[i]}' 不是数字"))
    with np.errstate(invalid="ignore"):
        fail(~((lon >= -180) & (lon <= 180)), lambda i: (f"longitude {lon[i]:g} out of range [-180, 180]",
                                                         f"经度 {lon[i]:g} 超出范围 [-180, 180]"))
        fail(~((lat >= -90) & (lat <= 90)), lambda i: (f"latitude {lat[i]:g} out of range [-90, 90]",
                                                       f"纬度 {lat[i]:g} 超出范围 [-90, 90]"))
        fail((lon == 0) & (lat == 0), lambda i: ("coordinates 0,0 (a placeholder for no position)",
                                                 "坐标为 0,0（无位置的占位值）"))

    # ---- names and types --------------------------------------------------------------------
    names = text[cols["name"]].to_numpy(dtype=object) if "name" in cols else np.full(n, "", dtype=object)
    category = np.full(n, None, dtype=object)
    cat_col = text[cols["category"]].to_numpy(dtype=object) if "category" in cols else None
    code_col = text[cols["typecode"]].to_numpy(dtype=object) if "typecode" in cols else None
    baidu_col = text[cols["baidu"]].to_numpy(dtype=object) if "baidu" in cols else None
    type_col = text[cols["type"]].to_numpy(dtype=object) if "type" in cols else None
    cache: dict = {}
    for i in range(n):
        if reasons[i]:
            continue
        name = str(names[i])
        cat, why = None, ("", "")
        if cat_col is not None and cat_col[i] != "":
            cat = str(cat_col[i]).strip()
            if cat not in known:        # a category's Chinese or English name works as its id
                cat = _by_name(profile, cat)
                if cat is None:
                    why = (f"unknown category '{cat_col[i]}'", f"未知的类别 '{cat_col[i]}'")
        elif code_col is not None and code_col[i] != "":
            cat, why = _classify_amap(poi_map, str(code_col[i]), name, cache)
        elif baidu_col is not None and baidu_col[i] != "":
            cat, why = _baidu_or_name(poi_map, str(baidu_col[i]), name, profile, cols["baidu"])
        elif type_col is not None and type_col[i] != "":
            raw = str(type_col[i])
            if re.fullmatch(r"[\d|;,.\s]+", raw):
                cat, why = _classify_amap(poi_map, raw, name, cache)
            elif raw.strip() in known:          # a category id (as --help says), not Baidu's
                cat = raw.strip()
            else:
                cat, why = _baidu_or_name(poi_map, raw, name, profile, cols["type"])
        else:
            why = ("no type (category, typecode and Baidu category are empty)",
                   "没有类型（类别、高德类型代码和百度分类均为空）")
        if cat is not None and cat not in known:
            cat, why = None, (f"category '{cat}' is not in the profile", f"类别 '{cat}' 不在所用指标体系中")
        if cat is None:
            reasons[i], reasons_zh[i] = why
        category[i] = cat

    # ---- capacity ---------------------------------------------------------------------------
    capacity = np.ones(n, dtype="float64")
    if "capacity" in cols:
        cap_raw = text[cols["capacity"]].to_numpy(dtype=object)
        cap = _to_float(text[cols["capacity"]])
        given = cap_raw != ""
        with np.errstate(invalid="ignore"):
            bad = given & ~(np.isfinite(cap) & (cap > 0))
        fail(bad, lambda i: (f"capacity '{cap_raw[i]}' is not a positive number",
                                  f"容量 '{cap_raw[i]}' 不是正数"))
        capacity = np.where(given & ~bad, cap, 1.0)

    # ---- assemble ---------------------------------------------------------------------------
    ok = np.array([not r for r in reasons], dtype=bool)
    dropped = RowReport({"row": int(row_no[i]), "reason": reasons[i], "reason_zh": reasons_zh[i]}
                        for i in np.flatnonzero(~ok))
    if not ok.any():
        top = dropped[:_MAX_REASONS_IN_MESSAGE]
        extra = len(dropped) - _MAX_REASONS_IN_MESSAGE
        head = "; ".join(f"row {d['row']}: {d['reason']}" for d in top)
        more = f" (and {extra} more)" if extra > 0 else ""
        head_zh = "；".join(f"第 {d['row']} 行：{d['reason_zh']}" for d in top)
        more_zh = f"（另有 {extra} 行）" if extra > 0 else ""
        raise TableError(path, f"no usable row among {n} data rows: {head}{more}", rows=list(dropped),
                         zh=f"{n} 行数据中没有可用的行：{head_zh}{more_zh}")

    notes = list(frame.attrs.get("notes_zh" if lang == "zh" else "notes", []))
    if datum != "wgs84":
        outside = int(np.asarray(out_of_china(lon[ok], lat[ok])).sum())
        if outside and lang == "zh":
            notes.append(f"{path.name}：{int(ok.sum())} 个点中有 {outside} 个位于中国境外，境外不使用 "
                         f"{datum} 坐标，已按 WGS-84 处理（请检查 --facilities-crs）")
        elif outside:
            notes.append(f"{path.name}: {outside} of {int(ok.sum())} point(s) lie outside China, where "
                         f"{datum} coordinates are not used; they were taken as WGS-84 (check "
                         "--facilities-crs)")
    w_lon, w_lat = to_wgs84(lon[ok], lat[ok], datum)
    out = gpd.GeoDataFrame(
        {
            "category": pd.array(category[ok].astype(str), dtype=object),
            "name": pd.array([str(x).strip() for x in names[ok]], dtype=object),
            "capacity": capacity[ok],
            "source": f"table:{path.name}",
            "row": row_no[ok].astype("int64"),
        },
        geometry=shapely.points(np.asarray(w_lon), np.asarray(w_lat)),
        crs=WGS84,
    )
    out.attrs["dropped"] = dropped
    out.attrs["columns"] = dict(cols)
    out.attrs["crs_in"] = datum
    out.attrs["notes"] = notes
    out.attrs["table"] = str(path)
    return out


def _table_input(table, columns: dict | None):
    """``(frame or None, path or name, column roles)`` of a table given as a file path (read
    later) or a DataFrame (:func:`_given_frame`); InputFileError for anything else."""
    if isinstance(table, pd.DataFrame):
        return _given_frame(table, columns)
    if isinstance(table, (str, os.PathLike)):
        return None, Path(table), columns
    raise InputFileError(f"the facilities table ({type(table).__name__})",
                         "must be a CSV/XLSX file or a DataFrame", zh="须为 CSV/XLSX 文件或 DataFrame")


class _FrameName(str):
    """How a table given as a DataFrame is named: in messages this text, in the facilities'
    ``source`` (``table:<name>``) its ``name``."""

    name = "DataFrame"


def _given_frame(table: pd.DataFrame, columns: dict | None):
    """A table given as a DataFrame as :func:`_read_frame` gives a file (text cells, blank for
    missing), its name and the column roles. A GeoDataFrame's geometry gives the coordinates
    (converted to longitude/latitude; the ``crs`` datum still applies), in columns ``lon`` and
    ``lat`` that win over any such column it has."""
    kind = type(table).__name__
    name = _FrameName(f"the facilities table ({kind}, {len(table)} row{'s' if len(table) != 1 else ''})")
    name.name = kind
    frame = pd.DataFrame(table).copy()
    if isinstance(table, gpd.GeoDataFrame) and table._geometry_column_name in table:
        geom = table.geometry
        if geom.crs is None:
            raise TableError(name, "has no CRS: set one (e.g. gdf.set_crs(4326) for longitude/latitude)",
                             zh="没有坐标参考系：请先设置（经纬度用 gdf.set_crs(4326)）")
        if not geom.crs.equals(WGS84):
            geom = geom.to_crs(WGS84)
        g = geom.to_numpy()
        bad = shapely.is_missing(g) | shapely.is_empty(g)
        pts = shapely.point_on_surface(np.where(bad, shapely.Point(), g))
        frame = frame.drop(columns=[table._geometry_column_name, "lon", "lat"], errors="ignore")
        frame["lon"] = np.where(bad, np.nan, shapely.get_x(pts))
        frame["lat"] = np.where(bad, np.nan, shapely.get_y(pts))
        columns = {**(columns or {}), "lon": "lon", "lat": "lat"}
    frame = frame.astype(object).where(frame.notna(), "").map(str)
    frame.columns = [str(c) for c in frame.columns]
    return frame.reset_index(drop=True), name, columns


# --------------------------------------------------------------------------------------------
# merging
# --------------------------------------------------------------------------------------------

_BRACKETS = re.compile(r"[(（\[【<《][^)）\]】>》]*[)）\]】>》]")
_NON_WORD = re.compile(r"[\W_]+")


def normalize_name(name: Any) -> str:
    """Name key for duplicate detection: NFKC, lower case, bracketed branch suffixes such as
    "(新街口店)" removed, whitespace and punctuation removed. Missing names give ""."""
    if name is None or (isinstance(name, float) and np.isnan(name)):
        return ""
    s = unicodedata.normalize("NFKC", str(name)).lower()
    s = _BRACKETS.sub("", s)
    return _NON_WORD.sub("", s)


def _as_wgs84_frame(gdf: gpd.GeoDataFrame, label: str) -> gpd.GeoDataFrame:
    """A copy without attrs, geometry column named "geometry", in EPSG:4326."""
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise TypeError(f"{label} must be a GeoDataFrame, not {type(gdf).__name__}")
    if "category" not in gdf.columns:
        raise ValueError(f"{label} has no 'category' column")
    try:
        _ = gdf.geometry
    except AttributeError:
        raise ValueError(f"{label} has no active geometry column") from None
    out = gpd.GeoDataFrame(gdf, copy=True)
    out.attrs = {}
    if out.geometry.name != "geometry":
        out = out.rename_geometry("geometry")
    if out.crs is None:
        out = out.set_crs(WGS84)
    elif not out.crs.equals(WGS84) and out.crs.to_epsg() != 4326:
        out = out.to_crs(WGS84)
    return out


def merge_facilities(osm: gpd.GeoDataFrame, table: gpd.GeoDataFrame, distance_m: float = 30.0,
                     metric_crs=None) -> gpd.GeoDataFrame:
    """Union of OSM facilities and a facility table without counting a facility twice.

    A table row that repeats an earlier one (:func:`_repeated_rows`: same category within
    :data:`REPEAT_M`, same name or none) is left out, ``attrs["repeated"]`` counts them.
    A table row is a duplicate, and left out, when an OSM facility of the same ``category``
    lies within ``distance_m`` of it, or lies within ``3 × distance_m`` and has the same
    normalised name (:func:`normalize_name`; empty names never match). The rule errs towards
    dropping: a different shop of the same category within ``distance_m`` of an OSM one is
    taken as the same facility, and several table rows can match one OSM facility.

    Both inputs need ``category`` and ``geometry`` (EPSG:4326; other CRSs are converted, a
    missing CRS is taken as WGS-84); ``name`` is optional. Distances are measured in
    ``metric_crs`` (:func:`lifecircle.io.crs.choose_crs`; ``None`` = UTM zone of the data) with
    one STRtree query over all pairs — no Python loop over facilities.

    Returns OSM rows first, then the kept table rows, index 0..n-1, EPSG:4326, with a
    ``source`` column ("osm" where OSM rows had none, the table's "table:…" values) and
    ``capacity`` filled with 1.0 where missing. ``attrs["duplicates"]`` lists the dropped
    table rows as ``{"row", "osm_index", "distance_m", "reason"}`` (``row`` is the table's
    ``row`` value when it has one, else its index label).
    """
    if distance_m < 0 or not np.isfinite(distance_m):
        raise ValueError(f"distance_m must be a non-negative number, not {distance_m!r}")
    osm = _as_wgs84_frame(osm, "osm")
    table = _as_wgs84_frame(table, "table")
    if "source" not in osm.columns:
        osm["source"] = "osm"
    else:
        osm["source"] = osm["source"].astype(object).where(osm["source"].notna(), "osm")
    if "source" not in table.columns:
        table["source"] = "table"

    duplicates = RowReport()
    dup = _repeated_rows(table, duplicates, metric_crs)
    repeated = int(dup.sum())
    og_all = np.asarray(osm.geometry.values, dtype=object)
    tg_all = np.asarray(table.geometry.values, dtype=object)
    if len(osm) and len(table) and (~shapely.is_missing(og_all)).any() and (~shapely.is_missing(tg_all)).any():
        both = np.concatenate([og_all, tg_all])
        both = both[~shapely.is_missing(both) & ~shapely.is_empty(both)]
        if len(both):
            xmin, ymin, xmax, ymax = shapely.total_bounds(both)
            crs = choose_crs(metric_crs, [xmin, xmax], [ymin, ymax])
            og = np.asarray(osm.geometry.to_crs(crs).values, dtype=object)
            tg = np.asarray(table.geometry.to_crs(crs).values, dtype=object)
            tree = shapely.STRtree(og)
            t_idx, o_idx = tree.query(tg, predicate="dwithin", distance=3.0 * distance_m)
            if len(t_idx):
                o_cat = osm["category"].astype(str).to_numpy(dtype=object)
                t_cat = table["category"].astype(str).to_numpy(dtype=object)
                same_cat = o_cat[o_idx] == t_cat[t_idx]
                dist = shapely.distance(tg[t_idx], og[o_idx])
                near = dist <= distance_m
                if "name" in osm.columns and "name" in table.columns:
                    o_name = np.array([normalize_name(x) for x in osm["name"].to_numpy(dtype=object)], dtype=object)
                    t_name = np.array([normalize_name(x) for x in table["name"].to_numpy(dtype=object)], dtype=object)
                    same_name = (t_name[t_idx] != "") & (t_name[t_idx] == o_name[o_idx])
                else:
                    same_name = np.zeros(len(t_idx), dtype=bool)
                hit = same_cat & (near | same_name) & ~dup[t_idx]
                if hit.any():
                    ht, ho, hd, hnear = t_idx[hit], o_idx[hit], dist[hit], near[hit]
                    order = np.lexsort((hd, ht))           # by table row, then distance
                    ht, ho, hd, hnear = ht[order], ho[order], hd[order], hnear[order]
                    first = np.unique(ht, return_index=True)[1]
                    dup[ht] = True
                    rows = table["row"].to_numpy() if "row" in table.columns else table.index.to_numpy()
                    for k in first:
                        duplicates.append({
                            "row": rows[ht[k]].item() if hasattr(rows[ht[k]], "item") else rows[ht[k]],
                            "osm_index": osm.index[ho[k]],
                            "distance_m": float(hd[k]),
                            "reason": (f"same category within {distance_m:g} m" if hnear[k]
                                       else f"same category and name within {3 * distance_m:g} m"),
                        })

    kept = table.loc[~dup]
    frames = [f for f in (osm, kept) if len(f)] or [osm]
    merged = pd.concat(frames, ignore_index=True, sort=False)
    merged = gpd.GeoDataFrame(merged, geometry="geometry", crs=WGS84)
    if "capacity" in merged.columns:
        merged["capacity"] = pd.to_numeric(merged["capacity"], errors="coerce").fillna(1.0)
    merged.attrs = {"duplicates": duplicates, "repeated": repeated}
    return merged


#: Table rows of one category this near (m) with the same name, or one without, are one facility.
REPEAT_M = 1.0


def _repeated_rows(table: gpd.GeoDataFrame, report: RowReport, metric_crs=None) -> np.ndarray:
    """Rows of ``table`` (EPSG:4326) that repeat an earlier row: the same ``category``
    within :data:`REPEAT_M` and the same normalised name or either without one (a row pasted
    twice would count as two kindergartens). Each is added to ``report``."""
    dup = np.zeros(len(table), dtype=bool)
    geom = np.asarray(table.geometry.values, dtype=object)
    ok = ~(shapely.is_missing(geom) | shapely.is_empty(geom))
    if ok.sum() < 2:
        return dup
    xmin, ymin, xmax, ymax = shapely.total_bounds(geom[ok])
    crs = choose_crs(metric_crs, [xmin, xmax], [ymin, ymax])
    g = np.asarray(table.geometry.to_crs(crs).values, dtype=object)
    idx = np.flatnonzero(ok)
    a, b = shapely.STRtree(g[idx]).query(g[idx], predicate="dwithin", distance=REPEAT_M)
    a, b = idx[a], idx[b]
    later = a > b                                   # row a repeats the earlier row b
    a, b = a[later], b[later]
    cat = table["category"].astype(str).to_numpy(dtype=object)
    same = cat[a] == cat[b]
    if "name" in table.columns:
        name = np.array([normalize_name(x) for x in table["name"].to_numpy(dtype=object)], dtype=object)
        same &= (name[a] == name[b]) | (name[a] == "") | (name[b] == "")
    a, b = a[same], b[same]
    if not len(a):
        return dup
    order = np.lexsort((b, a))
    rows = table["row"].to_numpy() if "row" in table.columns else table.index.to_numpy()
    for i, j in zip(a[order].tolist(), b[order].tolist()):
        if dup[i] or dup[j]:      # only a row that stays is repeated (an unnamed row that
            continue              # repeats "KG A" does not make "KG B" a repeat)
        dup[i] = True
        report.append({"row": rows[i].item() if hasattr(rows[i], "item") else rows[i],
                       "repeats": rows[j].item() if hasattr(rows[j], "item") else rows[j],
                       "distance_m": float(shapely.distance(g[i], g[j])),
                       "reason": f"repeats another row of the table within {REPEAT_M:g} m"})
    return dup
