/**
 * The console's one stylesheet, served from `GET /console/style.css` so that the pages carry no
 * inline style and the Content-Security-Policy can say `style-src 'self'`. Plain CSS, readable on a
 * phone: one column below 40rem, tables scroll sideways, focus is always visible.
 */
export const CONSOLE_CSS = `
*,*::before,*::after{box-sizing:border-box}
html{font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1b1f24;background:#f6f8fa}
body{margin:0}
a{color:#0550ae}
a:focus,button:focus,input:focus,select:focus,textarea:focus{outline:3px solid #fb8c00;outline-offset:2px}
header{background:#24292f;color:#fff;padding:.5rem 1rem;display:flex;flex-wrap:wrap;gap:.5rem 1.25rem;align-items:center}
header a{color:#fff}
header nav ul{list-style:none;display:flex;flex-wrap:wrap;gap:.25rem 1rem;margin:0;padding:0}
header .who{margin-left:auto;font-size:.9rem}
header form{display:inline}
main{max-width:72rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}
h2{font-size:1.2rem;margin:1.5rem 0 .5rem}
h3{font-size:1rem;margin:1rem 0 .25rem}
.skip{position:absolute;left:-999px}
.skip:focus{left:1rem;top:1rem;background:#fff;color:#000;padding:.25rem .5rem}
form.filters{margin-bottom:1rem;display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:flex-end;background:#fff;border:1px solid #d0d7de;padding:.75rem;border-radius:6px}
form.filters label,form.stack label{display:flex;flex-direction:column;font-size:.9rem;font-weight:600}
form.stack{display:flex;flex-direction:column;gap:.75rem;max-width:40rem}
input,select,textarea,button{font:inherit;padding:.35rem .5rem;border:1px solid #8c959f;border-radius:4px;background:#fff}
textarea{min-height:6rem;width:100%}
button{background:#0969da;color:#fff;border-color:#0969da;cursor:pointer}
button.danger{background:#cf222e;border-color:#cf222e}
button.link{background:none;border:none;color:#fff;text-decoration:underline;padding:0}
.table{overflow-x:auto;background:#fff;border:1px solid #d0d7de;border-radius:6px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #eaeef2;vertical-align:top}
th{background:#f6f8fa;font-size:.9rem}
dl.terms{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:.75rem}
dl.terms dt{font-weight:600}
dl.terms dd{margin:0;overflow-wrap:anywhere}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9rem}
pre{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:.75rem;overflow-x:auto;white-space:pre-wrap;overflow-wrap:anywhere}
ol.timeline,ol.steps{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:.75rem .75rem .75rem 2.25rem}
ol.timeline li,ol.steps li{margin:.25rem 0}
.badge{display:inline-block;padding:0 .4rem;border-radius:1rem;font-size:.85rem;border:1px solid #8c959f}
.pass,.active,.succeeded,.allowed{background:#dafbe1}
.fail,.revoked,.rejected,.failed,.denied{background:#ffebe9}
.skip-step,.expired{background:#eaeef2}
.pending_approval,.running{background:#fff8c5}
.notice{background:#ddf4ff;border:1px solid #54aeff;padding:.5rem .75rem;border-radius:6px}
.error{background:#ffebe9;border:1px solid #ff8182;padding:.5rem .75rem;border-radius:6px}
.board{display:grid;grid-template-columns:repeat(auto-fill,minmax(14rem,1fr));gap:.75rem}
.board section{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:.5rem .75rem}
.board h2{margin:.25rem 0 .5rem;font-size:1rem}
.board ul{list-style:none;margin:0;padding:0}
.board li{border-top:1px solid #eaeef2;padding:.35rem 0;font-size:.9rem}
.card{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:.75rem;margin:.75rem 0}
@media (max-width:40rem){header .who{margin-left:0}dl.terms{grid-template-columns:1fr}main{padding:.5rem}}
`;
