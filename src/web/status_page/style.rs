//! The page's only stylesheet, inline (one request, no asset route). Colours are GOV.UK's, which
//! keep 4.5:1 contrast on white; every colour has a word or symbol beside it. Narrow screens
//! stack the table's cells instead of scrolling sideways; print drops the filters and panels'
//! decoration.

pub(in crate::web) const CSS: &str = "\
*{box-sizing:border-box}body{font-family:system-ui,sans-serif;margin:0 auto;padding:1rem;\
max-width:80rem;color:#0b0c0c;line-height:1.4}a{color:#1d70b8}a:focus,button:focus,select:focus,\
summary:focus{outline:3px solid #fd0;outline-offset:0;background:#fd0;color:#0b0c0c}\
h1{margin:.2rem 0 1rem;overflow-wrap:anywhere}h2{font-size:1.2rem;margin:1rem 0 .5rem}\
.band ul{list-style:none;padding:0;margin:0;display:grid;gap:.5rem;\
grid-template-columns:repeat(auto-fit,minmax(9rem,1fr))}.band a{display:block;padding:.5rem;\
border:1px solid #b1b4b6;border-left:6px solid #505a5f;text-decoration:none;color:#0b0c0c}\
.band .n{font-size:1.6rem;font-weight:bold;display:block}.band .zero a{color:#505a5f}\
.c-needs_person a,.c-needs_person{border-left-color:#d4351c}.c-failing a,.c-failing{border-left-color:#942514}\
.c-in_progress a{border-left-color:#1d70b8}.c-done a{border-left-color:#00703c}\
.c-shadow a{border-left-color:#4c2c92}p.c-in_progress{border-left-color:#1d70b8}\
p.c-done{border-left-color:#00703c}p.c-shadow{border-left-color:#4c2c92}\
.panels{display:grid;gap:1rem;grid-template-columns:repeat(auto-fit,minmax(min(100%,24rem),1fr))}\
.panel{min-width:0}ol.next{padding-left:1.5rem;margin:0}\
ol.next a{text-decoration:none}ol.next a .trunc{text-decoration:underline}ol.next li{margin:.2rem 0;overflow-wrap:anywhere}\
.trunc{display:inline-block;max-width:16rem;overflow:hidden;text-overflow:ellipsis;\
white-space:nowrap;vertical-align:bottom}.app{max-width:10rem}.env{color:#505a5f}\
svg.timeline{width:100%;height:auto;max-height:12rem;font-size:10px}svg text{fill:#0b0c0c}\
.v-no-rotation{fill:#d4351c;background:#d4351c}.v-planned{fill:#f47738;background:#f47738}\
.v-running{fill:#1d70b8;background:#1d70b8}.v-renewed-by-its-issuer{fill:#00703c;background:#00703c}.legend{list-style:none;padding:0;display:flex;\
gap:1rem;flex-wrap:wrap;margin:.3rem 0}.sw{display:inline-block;width:1rem;height:1rem;\
vertical-align:middle}li.v-no-rotation,li.v-planned,li.v-running,li.v-renewed-by-its-issuer{background:none}\
table{border-collapse:collapse;width:100%;font-size:.9rem;table-layout:fixed}\
th,td{border-bottom:1px solid #b1b4b6;padding:.35rem .5rem;text-align:left;vertical-align:top;\
overflow-wrap:anywhere}th{background:#f3f2f1}td.trunc{display:table-cell;max-width:none}\
td.c-failing,td.c-needs_person{color:#d4351c;font-weight:bold}td.c-done{color:#00703c}\
code{font-size:.85rem;overflow-wrap:anywhere}dl.facts{display:grid;grid-template-columns:\
max-content 1fr;gap:.2rem 1rem}dt{font-weight:bold}dd{margin:0;overflow-wrap:anywhere}\
p.state{border-left:6px solid #505a5f;padding:.3rem .6rem}section.identity{border-left:6px solid #d4351c;padding:.3rem .8rem;margin-bottom:1rem}pre.plan{white-space:pre-wrap;\
overflow-wrap:anywhere;background:#f3f2f1;padding:.5rem}ol.story{list-style:none;\
padding-left:1rem;border-left:3px solid #b1b4b6}ol.story li{margin:0 0 .8rem;position:relative}\
ol.story li:before{content:'';position:absolute;left:-1.45rem;top:.35rem;width:.7rem;\
height:.7rem;border-radius:50%;background:#1d70b8}ol.story li.retry:before{background:#f47738}\
.why{overflow-wrap:anywhere}ul.taken{padding-left:1.2rem}td.renewer{color:#d4351c;font-weight:bold}.who,.dur{color:#505a5f}\
@media (max-width:45rem){h1{font-size:1.4rem}table.list thead,table.tokens thead{position:absolute;\
left:-9999px}table.list tr,table.tokens tr{display:block;border-bottom:2px solid #b1b4b6;padding:.3rem 0}\
table.list td,table.tokens td{display:inline-block;border:0;padding:.1rem .5rem;max-width:100%}\
table.list td.trunc,table.tokens td.trunc{display:inline-block;max-width:100%}\
dl.facts{grid-template-columns:1fr}}\
@media print{form,.band a{border:0}form,details{display:none}body{max-width:none;padding:0}\
a,ol.next a .trunc{color:#0b0c0c;text-decoration:none}.panels{display:block}}";
