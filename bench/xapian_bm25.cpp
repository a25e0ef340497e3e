/*
** xapian_bm25.cpp -- the Xapian baseline for bench/beir_bm25: the same
** BEIR corpus indexed by Xapian (title + text, English Snowball stemmer,
** positions off), every query run as an OR of its terms with Xapian's
** BM25 (k1 0.9, b 0.4), top-10, one thread, timed in the same way as
** plumb's modes. Built only when libxapian-dev is installed (a bench-only
** dependency: apt-get install libxapian-dev).
**
**   xapian_bm25 [--data DIR] [--reps N]
**
** Prints one JSON line for indexing and one for queries, plus nDCG@10 on
** the test split (same definition as beir_bm25) as a sanity check that the
** baseline ranks sensibly; exits 1 if it returns no hits at all.
*/
#include <xapian.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <cjson/cJSON.h>
#include <unistd.h>

static double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int main(int argc, char **argv) {
    std::string data = "../shared/data/beir/scifact";
    int reps = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else { fprintf(stderr, "usage: %s [--data DIR] [--reps N]\n", argv[0]); return 2; }
    }
    std::string corpus = data + "/corpus.jsonl", queries = data + "/queries.jsonl",
                qrels = data + "/qrels/test.tsv";
    if (access(corpus.c_str(), R_OK) || access(queries.c_str(), R_OK)) {
        fprintf(stderr, "xapian_bm25: dataset not found under %s (skipped)\n", data.c_str());
        return 2;
    }
    std::vector<std::string> ids, titles, texts;
    {
        std::ifstream in(corpus);
        std::string line;
        while (std::getline(in, line)) {
            cJSON *j = cJSON_Parse(line.c_str());
            cJSON *id = cJSON_GetObjectItem(j, "_id"), *t = cJSON_GetObjectItem(j, "title"),
                  *x = cJSON_GetObjectItem(j, "text");
            if (cJSON_IsString(id)) {
                ids.push_back(id->valuestring);
                titles.push_back(cJSON_IsString(t) ? t->valuestring : "");
                texts.push_back(cJSON_IsString(x) ? x->valuestring : "");
            }
            cJSON_Delete(j);
        }
    }
    std::string dbdir = "/tmp/plumb-xapian-" + std::to_string(getpid());
    double t0 = now_s();
    {
        Xapian::WritableDatabase db(dbdir, Xapian::DB_CREATE_OR_OVERWRITE);
        Xapian::TermGenerator tg;
        tg.set_stemmer(Xapian::Stem("english"));
        tg.set_stemming_strategy(Xapian::TermGenerator::STEM_ALL);
        db.begin_transaction();
        for (size_t i = 0; i < ids.size(); i++) {
            Xapian::Document doc;
            tg.set_document(doc);
            tg.index_text_without_positions(titles[i]);
            tg.index_text_without_positions(texts[i]);
            doc.set_data(ids[i]);
            db.add_document(doc);
        }
        db.commit_transaction();
    }
    double tidx = now_s() - t0;
    printf("{\"bench\":\"xapian_index\",\"dataset\":\"%s\",\"docs\":%zu,\"seconds\":%.3f,"
           "\"docs_per_s\":%.0f,\"xapian\":\"%s\"}\n", data.c_str(), ids.size(), tidx,
           ids.size() / tidx, Xapian::version_string());

    std::vector<std::pair<std::string, std::string>> qs;
    {
        std::ifstream in(queries);
        std::string line;
        while (std::getline(in, line)) {
            cJSON *j = cJSON_Parse(line.c_str());
            cJSON *id = cJSON_GetObjectItem(j, "_id"), *t = cJSON_GetObjectItem(j, "text");
            if (cJSON_IsString(id) && cJSON_IsString(t)) qs.emplace_back(id->valuestring, t->valuestring);
            cJSON_Delete(j);
        }
    }
    Xapian::Database db(dbdir);
    Xapian::Enquire enq(db);
    enq.set_weighting_scheme(Xapian::BM25Weight(0.9, 0, 1, 0.4, 0));
    Xapian::QueryParser qp;
    qp.set_stemmer(Xapian::Stem("english"));
    qp.set_stemming_strategy(Xapian::QueryParser::STEM_ALL);
    qp.set_default_op(Xapian::Query::OP_OR);
    qp.set_database(db);
    std::vector<double> qps;
    size_t hits = 0;
    std::map<std::string, std::vector<std::string>> top;
    for (int r = 0; r < reps; r++) {
        double ts = now_s();
        hits = 0;
        for (auto &q : qs) {
            Xapian::Query query = qp.parse_query(q.second, 0); /* flags 0: plain words */
            enq.set_query(query);
            Xapian::MSet m = enq.get_mset(0, 10);
            hits += m.size();
            if (r == 0) {
                std::vector<std::string> &v = top[q.first];
                for (auto it = m.begin(); it != m.end(); ++it) v.push_back(it.get_document().get_data());
            }
        }
        qps.push_back(qs.size() / (now_s() - ts));
    }
    std::sort(qps.begin(), qps.end());
    /* nDCG@10 on the judged queries (sanity) */
    std::map<std::string, std::map<std::string, int>> rel;
    {
        std::ifstream in(qrels);
        std::string q, d;
        int g;
        std::string header;
        std::getline(in, header);
        while (in >> q >> d >> g) rel[q][d] = g;
    }
    double sum = 0;
    int nq = 0;
    for (auto &qr : rel) {
        auto &v = top[qr.first];
        double dcg = 0, idcg = 0;
        int rank = 0;
        for (auto &d : v) {
            if (d == qr.first) continue;
            if (rank >= 10) break;
            auto f = qr.second.find(d);
            if (f != qr.second.end() && f->second > 0) dcg += f->second / std::log2(rank + 2.0);
            rank++;
        }
        std::vector<int> g;
        for (auto &x : qr.second) if (x.second > 0) g.push_back(x.second);
        std::sort(g.rbegin(), g.rend());
        for (size_t i = 0; i < g.size() && i < 10; i++) idcg += g[i] / std::log2(i + 2.0);
        if (idcg > 0) { sum += dcg / idcg; nq++; }
    }
    printf("{\"bench\":\"bm25_speed\",\"mode\":\"xapian_bm25_or_query\",\"dataset\":\"%s\","
           "\"queries\":%zu,\"k\":10,\"threads\":1,\"qps_median\":%.0f,\"reps\":%d,"
           "\"ndcg@10\":%.4f}\n", data.c_str(), qs.size(), qps[qps.size() / 2], reps,
           nq ? sum / nq : 0.0);
    std::string rm = "rm -rf '" + dbdir + "'";
    if (system(rm.c_str()) != 0) return 1;
    return hits ? 0 : 1;
}
