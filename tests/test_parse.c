/* test_parse.c -- parse_html() and parse_markdown(): hand-written
** expectations for each construct, the output invariants (valid UTF-8,
** trimmed, one blank line between paragraphs, single-line title) on
** every prefix of sample documents and on random tag soup. */
#include "check.h"
#include "plumb_impl.h"

#include <stdint.h>
#include <time.h>

typedef int (*parse_fn)(const char *, size_t, buf *, buf *);

static void show(const char *label, const char *s, size_t n) {
    fprintf(stderr, "  %s\"", label);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", stderr);
        else if (c == '\t') fputs("\\t", stderr);
        else if (c == '"') fputs("\\\"", stderr);
        else if (c < 0x20) fprintf(stderr, "\\x%02x", c);
        else fputc(c, stderr);
    }
    fputs("\"\n", stderr);
}

/* The invariants every output obeys; `pre` allows what verbatim blocks
** may contain (runs of blank lines). Returns 0 when clean. */
static int dirty(const buf *title, const buf *text, int pre) {
    const char *t = title->p ? title->p : "", *x = text->p ? text->p : "";
    size_t tn = title->len, xn = text->len;
    if (utf8_check(t, tn) != tn || utf8_check(x, xn) != xn) return 1;
    if (memchr(t, 0, tn) || memchr(x, 0, xn)) return 2;
    if (memchr(t, '\n', tn) || memchr(t, '\t', tn)) return 3;
    if (tn && (t[0] == ' ' || t[tn - 1] == ' ')) return 4;
    if (strstr(t, "  ")) return 5;
    if (xn && ((unsigned char)x[0] <= ' ' || (unsigned char)x[xn - 1] <= ' ')) return 6;
    if (strstr(x, " \n") || strstr(x, "\t\n")) return 7;
    if (!pre && strstr(x, "\n\n\n")) return 8;
    return 0;
}

static void parse_case(int line, const char *what, parse_fn fn, const char *in, size_t n,
                       const char *want_title, const char *want_text) {
    buf t = {0}, x = {0};
    int rc = fn(in, n, &t, &x);
    const char *gt = t.p ? t.p : "", *gx = x.p ? x.p : "";
    int d = dirty(&t, &x, 1);
    if (rc != 0 || strcmp(gt, want_title) != 0 || strcmp(gx, want_text) != 0 || d) {
        fprintf(stderr, "%s:%d: %s (rc %d, dirty %d)\n", __FILE__, line, what, rc, d);
        show("in:         ", in, n);
        show("title:      ", gt, t.len);
        show("want title: ", want_title, strlen(want_title));
        show("text:       ", gx, x.len);
        show("want text:  ", want_text, strlen(want_text));
        check_failures++;
    }
    buf_free(&t);
    buf_free(&x);
}

#define HTML(in, title, text) parse_case(__LINE__, "parse_html", parse_html, in, strlen(in), title, text)
#define HTMLN(in, n, title, text) parse_case(__LINE__, "parse_html", parse_html, in, n, title, text)
#define MD(in, title, text) \
    parse_case(__LINE__, "parse_markdown", parse_markdown, in, strlen(in), title, text)

/* ---- HTML ---- */

static void test_html_structure(void) {
    HTML("", "", "");
    HTML("  \n\t ", "", "");
    HTML("<html><head><title> A &amp;  B </title></head><body><p>x</p></body></html>", "A & B", "x");
    HTML("<body><h1>Main <b>Topic</b></h1><p>Body</p><h1>Second</h1>", "Main Topic",
         "Main Topic\n\nBody\n\nSecond");
    HTML("<title> </title><h1>H &amp; I</h1>", "H & I", "H & I");
    HTML("<title>T</title><h1>H</h1>", "T", "H");
    HTML("<h1>Unclosed heading<p>para", "Unclosed heading", "Unclosed heading\n\npara");
    HTML("<h1>Two<br>lines</h1>", "Two lines", "Two\nlines");
    HTML("<title>Broken<p>body text", "Broken", "body text");
    HTML("<title>a <b>b</b></title>", "a <b>b</b>", ""); /* RCDATA: tags are text */

    /* nested and unclosed tags */
    HTML("<div><p>One<p>Two<div>Three <span>four <b>five", "", "One\n\nTwo\n\nThree four five");
    HTML("text <a href=\"x", "", "text");
    HTML("a <b", "", "a");
    HTML("a <", "", "a <");
    HTML("a < b and c<3 and d<>e", "", "a < b and c<3 and d<>e");
    HTML("a</ b>c</>d", "", "acd");
    HTML("<b>foo</b> <i>bar</i><b>baz</b>", "", "foo barbaz");

    /* breaks */
    HTML("<p>a</p><p>b</p>c<br>d<div>e</div><ul><li>f</li><li>g</li></ul><h2>h</h2>"
         "<table><tr><td>i</td><td>j</td></tr><tr><td>k</td></tr></table>",
         "", "a\n\nb\n\nc\nd\n\ne\n\nf\ng\n\nh\n\ni\nj\nk");
    HTML("a<br/>b</br>c<hr>d", "", "a\nb\nc\n\nd");
    HTML("<section><article><header>H</header><blockquote>Q</blockquote><footer>F</footer>"
         "</article></section>",
         "", "H\n\nQ\n\nF");
    HTML("<dl><dt>term</dt><dd>definition</dd></dl>", "", "term\ndefinition");
    HTML("  <p>  a \n\t b  </p>  ", "", "a b");
    HTML("<P>a</P><SCRIPT>x</SCRIPT><Br>b<H1>T</h1>", "T", "a\n\nb\n\nT");

    /* <pre> keeps whitespace (but drops the newline right after the tag) */
    HTML("<p>a</p><pre>\n  x  y\n\n   z\n</pre><p>b</p>", "", "a\n\n  x  y\n\n   z\n\nb");
    HTML("<pre><code>if (a &lt; b)\n    return;</code></pre>", "", "if (a < b)\n    return;");
    HTML("<pre>line   \nnext\t\n</pre>", "", "line\nnext");
    HTML("x <pre>  a\r\n  b</pre> y", "", "x\n\n  a\n  b\n\ny");
}

static void test_html_dropped(void) {
    HTML("<p>a</p><script>document.write('</p><p>x');var t='</div>';</script><p>b</p>"
         "<style>p:after{content:'</b>'}</style>c",
         "", "a\n\nb\n\nc");
    HTML("x<SCRIPT type=\"text/javascript\">if (a<b) alert(\"</scr\"+\"ipt>\");</SCRIPT >y", "",
         "xy");
    HTML("a<script>var x = 1;", "", "a");
    HTML("a<!-- x <p>y</p> -->b<!---->c<!-->d<!--->e<!-- -- -->f<!-- unclosed", "", "abcdef");
    HTML("<!DOCTYPE html><?xml version=\"1.0\"?>a<![CDATA[ b ]]>c<!bogus>d", "", "acd");
    HTML("<head><meta name=x content=y><link rel=x>stray<title>T</title></head><body>B</body>",
         "T", "B");
    HTML("<head><title>T</title><p>Hello", "T", "Hello");
    HTML("<body><svg viewBox=\"0 0 1 1\"><title>icon</title><path d=\"M0\"/></svg><h1>Real</h1>",
         "Real", "Real");
    HTML("<template><p>x<template>y</template>z</p></template>w<noscript>ns</noscript>v", "", "wv");
    HTML("<iframe>frame <b>text</b></iframe>after", "", "after");
}

static void test_html_entities(void) {
    HTML("&lt;tag&gt; &quot;q&quot; &apos;s&apos; &#65;&#x42;&#X43;&#68 E", "",
         "<tag> \"q\" 's' ABCD E");
    HTML("[&#0;][&#x110000;][&#xD800;][&#99999999999;][&#150;][&#x80;][&#1;][&#x;][&#;]", "",
         "[\xEF\xBF\xBD][\xEF\xBF\xBD][\xEF\xBF\xBD][\xEF\xBF\xBD][\xE2\x80\x93][\xE2\x82\xAC]"
         "[\xEF\xBF\xBD][&#x;][&#;]");
    HTML("&copy;&reg;&trade;&hellip;&mdash;&ndash;&lsquo;&rsquo;&ldquo;&rdquo;&bull;&middot;"
         "&deg;&plusmn;&times;&divide;&eacute;&egrave;&agrave;&ccedil;&uuml;&ouml;&auml;&szlig;"
         "&euro;&pound;&yen;&cent;&sect;&para;&laquo;&raquo;",
         "",
         "\xC2\xA9\xC2\xAE\xE2\x84\xA2\xE2\x80\xA6\xE2\x80\x94\xE2\x80\x93\xE2\x80\x98\xE2\x80\x99"
         "\xE2\x80\x9C\xE2\x80\x9D\xE2\x80\xA2\xC2\xB7\xC2\xB0\xC2\xB1\xC3\x97\xC3\xB7\xC3\xA9"
         "\xC3\xA8\xC3\xA0\xC3\xA7\xC3\xBC\xC3\xB6\xC3\xA4\xC3\x9F\xE2\x82\xAC\xC2\xA3\xC2\xA5"
         "\xC2\xA2\xC2\xA7\xC2\xB6\xC2\xAB\xC2\xBB");
    HTML("&unknown; &amp &ampx AT&T &; a&nbsp;&nbsp;b &Eacute;&EACUTE; &alpha;&Omega;", "",
         "&unknown; & &ampx AT&T &; a b \xC3\x89&EACUTE; \xCE\xB1\xCE\xA9");
    HTML("tab&Tab;x&#10;y&shy;z", "", "tab x yz");
    HTML("&eacute x &copy x &copy2 &lt=", "", "&eacute x \xC2\xA9 x &copy2 &lt="); /* legacy names only */
    HTML("a&#x20AC;b&#8364;c&#x1F600;", "", "a\xE2\x82\xAC" "b\xE2\x82\xAC" "c\xF0\x9F\x98\x80");
    HTML("a &", "", "a &");
    HTML("a &#", "", "a &#");
    HTML("a &#x", "", "a &#x");
    HTML("a &#12", "", "a"); /* U+000C is whitespace */
}

static void test_html_attributes(void) {
    HTML("<a title=\"x>y\" data-x='a>b' c=d>link</a> <img alt=\"1 > 0\" src=x>after", "",
         "link after");
    HTML("<p>one</p><a title=\"x>hello world", "", "one\n\nhello world");
    HTML("<a href=foo>bar</a><a href = 'q'   >baz</a>", "", "barbaz");
    HTML("<div class=\"a\"\n  id='b'\n>x</div>", "", "x");
    HTML("<a \"odd=\"y\">z", "", "z"); /* a quote starting a name is part of it */
}

static void test_html_bytes(void) {
    HTML("a\xC2\xA0\xC2\xA0" "b", "", "a b");
    HTML("\xEF\xBB\xBFhi", "", "hi");
    HTML("a\xFF\xC3" "b", "", "a\xEF\xBF\xBD\xEF\xBF\xBD" "b");
    HTMLN("a\0b", 3, "", "ab");
    HTML("<title>caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC</title>", "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC", "");

    /* 20,000 nested elements: no recursion, no trouble */
    buf in = {0};
    for (int i = 0; i < 20000; i++) buf_puts(&in, "<div><span>");
    buf_puts(&in, "x");
    HTML(in.p, "", "x");
    buf_free(&in);
}

/* ---- Markdown ---- */

static void test_md_blocks(void) {
    MD("", "", "");
    MD("---\ntitle: FM Title\nauthor: x\n---\n# H1\n\ntext", "FM Title", "H1\n\ntext");
    MD("---\ntitle: \"Quoted: yes\"\n---\nbody", "Quoted: yes", "body");
    MD("+++\ntitle = \"T\"\n+++\nx", "T", "x");
    MD("---\nnot fm\n", "", "not fm");
    MD("## Sub\n\n# Main *T*\n\n# Second", "Main T", "Sub\n\nMain T\n\nSecond");
    MD("Title Here\n==========\n\nPara\n\nSub\n---\nx", "Title Here",
       "Title Here\n\nPara\n\nSub\n\nx");
    MD("## Title ##\n#hashtag\n#", "", "Title\n\n#hashtag");
    MD("a\n\n***\n\nb\n- - -\nc", "", "a\n\nb\n\nc");
    MD("line one\nline two\n\nnew para", "", "line one line two\n\nnew para");
    MD("a  \nb\\\nc", "", "a\nb\nc");
    MD("# T\r\n\r\nline1\r\nline2\r\n", "T", "T\n\nline1 line2");

    /* code */
    MD("```c\nint  x;\n\n*y*\n```\nafter", "", "int  x;\n\n*y*\n\nafter");
    MD("~~~\ncode\n  more", "", "code\n  more");
    MD("para\n\n    code  x\n    y\n\nz", "", "para\n\ncode  x\ny\n\nz");
    MD("- item\n  ```\n  in list\n  ```\n", "", "item\n\nin list");

    /* lists */
    MD("- a\n- b\n  * c\n1. d\n2) e\n- [ ] task\n+ [x] done", "", "a\nb\nc\nd\ne\ntask\ndone");
    MD("- item\n\n  more text\n- next", "", "item\n\nmore text\n\nnext");
    MD("- lazy\ncontinuation", "", "lazy continuation");
    MD("> - a\n> - b", "", "a\nb");

    /* tables */
    MD("| A | B |\n|---|:-:|\n| 1 | **2** |\n\nafter", "", "A B\n1 2\n\nafter");
    MD("A | B\n--|--\nx | y\nplain", "", "A B\nx y\n\nplain");
    MD("a | b\n---", "", "a | b"); /* one dash cell for two headers: a heading */

    /* quotes */
    MD("> q1\n> q2\n>\n> q3\n\nout", "", "q1 q2\n\nq3\n\nout");
    MD("> # Quoted heading\n> text", "Quoted heading", "Quoted heading\n\ntext");

    /* link definitions, footnotes, HTML */
    MD("[x]: http://e.com\n[y]: <http://f> 'T'\ntext", "", "text");
    MD("Text[^1] more.\n\n[^1]: The note.", "", "Text more.\n\nThe note.");
    MD("a <span class=\"x\">b</span> c<!-- hid -->d\n\n<!--\nblock\n-->\ne", "", "a b cd\n\ne");
    MD("a\n\n<script>\nvar x = '<b>';\n</script>\n\nb", "", "a\n\nb");
    MD("<style>p { x: 1 }</style>\nkept", "", "kept");
}

static void test_md_inline(void) {
    MD("**bold** *it* __b__ _i_ ~~del~~ ***both*** snake_case_name a * b 2 * 3 *unclosed and_ x",
       "", "bold it b i del both snake_case_name a * b 2 * 3 *unclosed and_ x");
    MD("[text](http://u \"t\") ![alt](i.png) [ref][r] [r] [no] <http://a.b/c> <me@x.org> "
       "[empty]()\n\n[r]: http://x",
       "", "text alt ref r [no] http://a.b/c me@x.org empty");
    MD("Use `a*b*c` and `` x ` y `` and `unclosed", "", "Use a*b*c and x ` y and `unclosed");
    MD("\\*a\\* \\_b\\_ \\# \\[x\\](y) \\\\ \\q", "", "*a* _b_ # [x](y) \\ \\q");
    MD("&copy; &#65; `&amp;` &bogus;", "", "\xC2\xA9 A &amp; &bogus;");
    MD("[![logo](l.png) Home](/)", "", "logo Home");
    MD("[**bold** link](x)", "", "bold link");
    MD("<https://x.y/z?q=1&r=2> <div>", "", "https://x.y/z?q=1&r=2");
    MD("[w](https://en.wikipedia.org/wiki/Foo_(bar)) end", "", "w end");
    MD("[a](<url with spaces> 'title') b", "", "a b");
    MD("[unclosed](http://x and [more]", "", "[unclosed](http://x and [more]");
    MD("a*b*c x_y_z", "", "abc x_y_z");
    MD("a ~b~ c ~~d~~", "", "a ~b~ c d"); /* strikethrough needs two */
    MD("<!-- a <!-- b --> c", "", "c");
}

/* ---- every prefix, random soup ---- */

static const char html_sample[] =
    "<!DOCTYPE html><html><head><title>Caf\xC3\xA9 &amp; \xE6\x97\xA5\xE6\x9C\xAC</title>"
    "<style>a>b{x:'</p>'}</style><script>if(a<b&&c>d)x='</div>';</script></head>"
    "<body><h1 class=\"t\" title='a>b'>Heading \xF0\x9F\x98\x80</h1><!-- note -->"
    "<p>Para &eacute;&#233;&#xE9;&nbsp;x &unknown; <a href=\"u?a=1&b=2\">link</a></p>"
    "<pre>\n  code\n    more</pre><ul><li>\xD0\x96 one<li>two</ul><![CDATA[x]]><br/>end";

static const char md_sample[] =
    "---\ntitle: Caf\xC3\xA9\n---\n# Heading \xF0\x9F\x98\x80\n\nPara *em* **b** `c` "
    "[l](u \"t\") ![i](p) &amp; \\* \xE6\x97\xA5\xE6\x9C\xAC\n\n- a\n- [x] b\n\n> q\n\n"
    "```\ncode  x\n```\n\n| A | B |\n|---|---|\n| 1 | 2 |\n\n[r]: http://x\n<!-- c -->\n"
    "Setext\n===\n    ind\n";

static void prefixes(const char *what, parse_fn fn, const char *sample, size_t n) {
    int bad = 0;
    for (size_t k = 0; k <= n; k++) {
        buf t = {0}, x = {0};
        int rc = fn(sample, k, &t, &x);
        int d = dirty(&t, &x, 0);
        if ((rc || d) && bad++ < 3) {
            fprintf(stderr, "%s: prefix of %zu bytes: rc %d, dirty %d\n", what, k, rc, d);
            show("text: ", x.p ? x.p : "", x.len);
        }
        buf_free(&t);
        buf_free(&x);
    }
    CHECK(bad == 0);
}

static uint64_t rng = 0x2545F4914F6CDD1DULL;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static void soup(void) {
    static const char *const tok[] = {
        "<", ">", "</", "<p>", "</p>", "<pre>", "</pre>", "<script>", "</script>", "<!--", "-->",
        "<title>", "</title>", "<h1>", "</h1>", "\"", "'", "=", "&", "&amp;", "&#", "x", ";",
        "&#x1F600;", " ", "\n", "\n\n", "\t", "word", "\xC3\xA9", "\xE6\x97\xA5", "\xF0\x9F", "\xFF",
        "*", "_", "`", "```", "[", "]", "(", ")", "!", "#", "# ", "- ", "> ", "|", "---", "\\",
        "<a href=\"", "<head>", "<body>", "<template>", "<svg>", "\r\n", "    ", "1. ", "~~~",
        "<![CDATA[", "]]>", "<?", "\0"};
    buf in = {0};
    int bad = 0;
    for (int r = 0; r < 4000; r++) {
        buf_reset(&in);
        int k = 1 + (int)(rnd() % 60);
        for (int i = 0; i < k; i++) {
            const char *s = tok[rnd() % (sizeof tok / sizeof tok[0])];
            buf_append(&in, s, *s ? strlen(s) : 1);
        }
        for (int f = 0; f < 2; f++) {
            buf t = {0}, x = {0};
            int rc = (f ? parse_markdown : parse_html)(in.p, in.len, &t, &x);
            int d = dirty(&t, &x, 1);
            if ((rc || d) && bad++ < 3) {
                fprintf(stderr, "soup %d (%s): rc %d dirty %d\n", r, f ? "md" : "html", rc, d);
                show("in:   ", in.p, in.len);
                show("text: ", x.p ? x.p : "", x.len);
            }
            buf_free(&t);
            buf_free(&x);
        }
    }
    CHECK(bad == 0);
    buf_free(&in);
}

/* Hostile inputs that would be quadratic with naive rescans. */
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Seconds to parse `unit` repeated to `bytes`, both parsers, best of 3. */
static double hostile_time(const char *unit, size_t bytes) {
    buf in = {0};
    while (in.len < bytes) buf_puts(&in, unit);
    buf_puts(&in, "\n>)\"' end"); /* closers that came too late */
    double best = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        buf t = {0}, x = {0};
        CHECK(parse_html(in.p, in.len, &t, &x) == 0);
        buf_reset(&t);
        buf_reset(&x);
        CHECK(parse_markdown(in.p, in.len, &t, &x) == 0);
        double dt = now() - t0;
        if (dt < best) best = dt;
        buf_free(&t);
        buf_free(&x);
    }
    buf_free(&in);
    return best;
}

/* No input may make the parsers quadratic. Judged by how the time grows
** from 256 KB to 1 MB (x4 for linear work, x16 for quadratic), not by a
** wall-clock limit, which a loaded machine or a sanitizer would break. */
static void hostile(void) {
    static const char *const unit[] = {"<a b='", "<a b=\"x>", "[a](", "`` ` ", "[[[[", "<x y=\"",
                                       "*_~", "&#x", "<!-", "<a\n", "<title>x", "<![CDATA[]>",
                                       "x <!-- ", "<script>", "[](<", "[](x (", "\\``", "`` \\`",
                                       "<![CDATA[](", "[]("};
    for (size_t u = 0; u < sizeof unit / sizeof unit[0]; u++) {
        double small = hostile_time(unit[u], 1u << 18), big = hostile_time(unit[u], 1u << 20);
        double ratio = big / (small > 1e-4 ? small : 1e-4);
        /* 256 KB fits in cache and takes a couple of milliseconds, so noise
        ** and cache effects can fake a large ratio; before failing, judge
        ** again between 1 MB and 4 MB, both past the cache and long enough
        ** to time. A quadratic parser fails every try. */
        for (int attempt = 0; attempt < 3 && !(ratio < 10 || big < 0.05); attempt++) {
            small = hostile_time(unit[u], 1u << 20);
            big = hostile_time(unit[u], 4u << 20);
            ratio = big / (small > 1e-4 ? small : 1e-4);
        }
        if (ratio >= 10) fprintf(stderr, "hostile input '%s': %.3f s for 256 KB, %.3f s for 1 MB\n",
                                 unit[u], small, big);
        CHECK(ratio < 10 || big < 0.05); /* tiny times are all noise */
    }
}


static void speed(void) {
    buf in = {0};
    while (in.len < 4u << 20) buf_append(&in, html_sample, sizeof html_sample - 1);
    buf t = {0}, x = {0};
    double t0 = now();
    CHECK(parse_html(in.p, in.len, &t, &x) == 0);
    double t1 = now();
    buf_reset(&in);
    while (in.len < 4u << 20) buf_append(&in, md_sample + 24, sizeof md_sample - 25);
    buf_reset(&x);
    double t2 = now();
    CHECK(parse_markdown(in.p, in.len, &t, &x) == 0);
    double t3 = now();
    printf("parse_html %.0f MB/s, parse_markdown %.0f MB/s\n", 4.19 / (t1 - t0), 4.19 / (t3 - t2));
    buf_free(&t);
    buf_free(&x);
    buf_free(&in);
}

int main(void) {
    test_html_structure();
    test_html_dropped();
    test_html_entities();
    test_html_attributes();
    test_html_bytes();
    test_md_blocks();
    test_md_inline();
    prefixes("parse_html", parse_html, html_sample, sizeof html_sample - 1);
    prefixes("parse_markdown", parse_markdown, md_sample, sizeof md_sample - 1);
    soup();
    hostile();
    speed();
    return CHECK_DONE();
}
