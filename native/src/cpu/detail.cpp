// The duplicate search's verdict on a candidate pair (curation/duplicates.ts): how alike two
// 32×32 grey images are in detail once aligned by crop, shift and mirroring. It was
// JavaScript, on one core, and most of the search's time; this is the same arithmetic (sums
// and products in double, planes stored as float, each operation in the JavaScript's order,
// built without FMA contraction), so it gives the same bits, on as many cores as it is given.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <list>
#include <new>
#include <thread>
#include <unordered_map>
#include <vector>

#include "eb_backend.h"

namespace {

constexpr int SIDE = 32, PX = SIDE * SIDE;
// Magnifications: none, and what a 1- and a 2-pixel crop of each side does.
constexpr int ZOOMS = 3;
const double ZOOM[ZOOMS] = {1.0, SIDE / (double)(SIDE - 2), SIDE / (double)(SIDE - 4)};
// The central 24×24 window is compared, the second image shifted by up to a pixel each way.
constexpr int W0 = 4, W1 = SIDE - 4, SHIFT = 1;
// Magnification pairs (of a, of b) tried: none, and each magnification on either side.
constexpr int PAIRINGS[5][2] = {{0, 0}, {1, 0}, {0, 1}, {2, 0}, {0, 2}};

// Bilinear magnification about the centre, mirrored or not, as a gather: for each output pixel
// its four source pixels and their weights (rounded to float, as the JavaScript stored them).
struct Resampler {
    int32_t at[4 * PX];
    float w[4 * PX];
};

std::vector<Resampler> make_resamplers() {
    std::vector<Resampler> r(2 * ZOOMS);
    const double h = SIDE / 2.0;
    for (int z = 0; z < ZOOMS; z++)
        for (int mirror = 0; mirror < 2; mirror++) {
            Resampler &t = r[2 * z + mirror];
            const double f = ZOOM[z];
            for (int y = 0; y < SIDE; y++)
                for (int x = 0; x < SIDE; x++) {
                    const double sy = (y + 0.5 - h) / f + h - 0.5, sx0 = (x + 0.5 - h) / f + h - 0.5;
                    const double sx = mirror ? SIDE - 1 - sx0 : sx0;
                    const int x0 = (int)std::max(0.0, std::min((double)(SIDE - 2), std::floor(sx)));
                    const int y0 = (int)std::max(0.0, std::min((double)(SIDE - 2), std::floor(sy)));
                    const double fx = sx - x0, fy = sy - y0;
                    const int q = y0 * SIDE + x0, o = 4 * (y * SIDE + x);
                    t.at[o] = q; t.at[o + 1] = q + 1; t.at[o + 2] = q + SIDE; t.at[o + 3] = q + SIDE + 1;
                    t.w[o] = (float)((1 - fy) * (1 - fx));
                    t.w[o + 1] = (float)((1 - fy) * fx);
                    t.w[o + 2] = (float)(fy * (1 - fx));
                    t.w[o + 3] = (float)(fy * fx);
                }
        }
    return r;
}

const std::vector<Resampler> &resamplers() {
    static const std::vector<Resampler> r = make_resamplers();
    return r;
}

// One pass of the [1 2 1]/4 binomial filter along both axes, edges clamped.
void blur(float *p, float *tmp) {
    const int L = SIDE - 1;
    for (int y = 0; y < SIDE; y++) {
        const int r = y * SIDE;
        for (int x = 0; x < SIDE; x++)
            tmp[r + x] = (float)(((double)p[r + (x ? x - 1 : 0)] + 2.0 * p[r + x] + p[r + (x < L ? x + 1 : L)]) / 4);
    }
    for (int y = 0; y < SIDE; y++) {
        const int up = (y ? y - 1 : 0) * SIDE, r = y * SIDE, down = (y < L ? y + 1 : L) * SIDE;
        for (int x = 0; x < SIDE; x++) p[r + x] = (float)(((double)tmp[up + x] + 2.0 * tmp[r + x] + tmp[down + x]) / 4);
    }
}

void resample(const float *p, int zoom, bool mirror, float *out) {
    const Resampler &t = resamplers()[2 * zoom + (mirror ? 1 : 0)];
    for (int i = 0, o = 0; i < PX; i++, o += 4)
        out[i] = (float)((double)t.w[o] * p[t.at[o]] + (double)t.w[o + 1] * p[t.at[o + 1]] + (double)t.w[o + 2] * p[t.at[o + 2]] +
                         (double)t.w[o + 3] * p[t.at[o + 3]]);
}

double correlation(const float *a, const float *b, int dx, int dy) {
    double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
    for (int y = W0; y < W1; y++)
        for (int x = W0, ao = y * SIDE, bo = (y + dy) * SIDE + dx; x < W1; x++) {
            const double u = a[ao + x], v = b[bo + x];
            sa += u;
            sb += v;
            saa += u * u;
            sbb += v * v;
            sab += u * v;
        }
    const double n = (double)(W1 - W0) * (W1 - W0), va = saa - (sa * sa) / n, vb = sbb - (sb * sb) / n;
    return va > 1e-6 && vb > 1e-6 ? (sab - (sa * sb) / n) / std::sqrt(va * vb) : 0;
}

// An image's two planes for the comparison: its grey levels lightly smoothed (the layout the
// alignment is found on), and their detail, the smoothed image minus a much smoother one (a
// band-pass: what tells two photographs of the same kind of scene apart, where the smooth skies
// and seas of unrelated pictures make their whole-image correlations high); and the smoothed
// plane at every magnification, mirrored or not, made when first asked.
struct Views {
    float smooth[PX], detail[PX];
    float resampled[2 * ZOOMS][PX];
    bool made[2 * ZOOMS] = {};

    Views(const uint8_t *grey) {
        float tmp[PX];
        for (int p = 0; p < PX; p++) smooth[p] = grey[p];
        blur(smooth, tmp);
        std::copy(smooth, smooth + PX, detail);
        for (int r = 0; r < 3; r++) blur(detail, tmp);
        for (int p = 0; p < PX; p++) detail[p] = (float)((double)smooth[p] - detail[p]);
    }
    const float *smoothed(int zoom, bool mirror) {
        if (zoom == 0 && !mirror) return smooth;
        const int k = 2 * zoom + (mirror ? 1 : 0);
        if (!made[k]) resample(smooth, zoom, mirror, resampled[k]);
        made[k] = true;
        return resampled[k];
    }
};

// How alike two images are in detail once aligned: the crop (either image magnified as by a
// crop of up to two pixels a side), shift (up to a pixel) and mirroring that best match their
// smoothed layouts, and at that alignment the correlation of their details. Copies re-encoded,
// recoloured, cropped a little or flipped score above 0.8; two photographs of ships at sea
// seldom do. Coarse to fine: every magnification unshifted, then all shifts of the best two
// (ties kept in the pairings' order, as the JavaScript's stable sort kept them).
double detail_similarity(Views &a, Views &b, bool mirror) {
    struct Pairing {
        int za, zb;
        double r;
    } unshifted[5];
    for (int p = 0; p < 5; p++) {
        const int za = PAIRINGS[p][0], zb = PAIRINGS[p][1];
        unshifted[p] = {za, zb, correlation(a.smoothed(za, false), b.smoothed(zb, mirror), 0, 0)};
    }
    std::stable_sort(unshifted, unshifted + 5, [](const Pairing &p, const Pairing &q) { return q.r < p.r; });
    Pairing best = unshifted[0];
    int dx = 0, dy = 0;
    for (int c = 0; c < 2; c++) {
        const float *sa = a.smoothed(unshifted[c].za, false), *sb = b.smoothed(unshifted[c].zb, mirror);
        for (int y = -SHIFT; y <= SHIFT; y++)
            for (int x = -SHIFT; x <= SHIFT; x++) {
                const double r = x || y ? correlation(sa, sb, x, y) : unshifted[c].r;
                if (r > best.r) {
                    best = {unshifted[c].za, unshifted[c].zb, r};
                    dx = x;
                    dy = y;
                }
            }
    }
    float da[PX], db[PX];
    const float *pa = a.detail, *pb = b.detail;
    if (best.za != 0) {
        resample(a.detail, best.za, false, da);
        pa = da;
    }
    if (best.zb != 0 || mirror) {
        resample(b.detail, best.zb, mirror, db);
        pb = db;
    }
    return correlation(pa, pb, dx, dy);
}

// The views of the images met last, at most `cap`: candidates are mostly of one class, and a
// data set keeps a class's images together, so these serve most pairs.
class RecentViews {
public:
    RecentViews(const uint8_t *grey, size_t cap) : grey_(grey), cap_(cap) {}
    Views &get(int32_t i) {
        auto it = where_.find(i);
        if (it != where_.end()) {
            order_.splice(order_.begin(), order_, it->second);
            return order_.front().second;
        }
        order_.emplace_front(std::piecewise_construct, std::forward_as_tuple(i), std::forward_as_tuple(grey_ + (size_t)i * PX));
        where_[i] = order_.begin();
        if (order_.size() > cap_) {
            where_.erase(order_.back().first);
            order_.pop_back();
        }
        return order_.front().second;
    }

private:
    const uint8_t *grey_;
    size_t cap_;
    std::list<std::pair<int32_t, Views>> order_;
    std::unordered_map<int32_t, std::list<std::pair<int32_t, Views>>::iterator> where_;
};

}  // namespace

extern "C" int eb_cpu_detail_similarity(const uint8_t *grey, int64_t n, const int32_t *pairs, const uint8_t *mirror, int64_t m,
                                        int threads, double *out, const volatile int *cancel) {
    if (n < 0 || m < 0 || threads < 1) return EB_ERR_ARG;
    for (int64_t p = 0; p < 2 * m; p++)
        if (pairs[p] < 0 || pairs[p] >= n) return EB_ERR_ARG;
    resamplers();
    // Contiguous shares of the pairs, so each thread's recent views stay those of its images;
    // no more threads than cores, each holding up to 32 MB of views.
    const int64_t cores = std::max(1u, std::thread::hardware_concurrency());
    const int64_t t = std::max<int64_t>(1, std::min<int64_t>({(int64_t)threads, m, cores}));
    std::vector<std::thread> pool;
    std::vector<int> status(t, EB_OK);
    auto work = [&](int64_t k) {
        // Out of memory in a thread of our own would end the process: it becomes a status instead.
        try {
            RecentViews views(grey, 1024);
            for (int64_t p = m * k / t; p < m * (k + 1) / t; p++) {
                if ((p & 255) == 0 && cancel && *cancel) {
                    status[k] = EB_ERR_CANCELLED;
                    return;
                }
                Views &a = views.get(pairs[2 * p]);
                Views &b = views.get(pairs[2 * p + 1]);
                out[p] = detail_similarity(a, b, mirror[p] != 0);
            }
        } catch (const std::bad_alloc &) {
            status[k] = EB_ERR_ALLOC;
        }
    };
    for (int64_t k = 1; k < t; k++) pool.emplace_back(work, k);
    work(0);
    for (auto &th : pool) th.join();
    for (int s : status)
        if (s != EB_OK) return s;
    return EB_OK;
}
