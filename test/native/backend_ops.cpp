// Backend op checks in the manner of ggml's test-backend-ops: every op of eb_backend_i runs
// on each available backend and on the CPU reference, compared by normalised MSE
// (mse(a, b) / mse(a, 0)) with a per-op limit; finite-difference gradient checks run on
// every backend; 20 training steps of Ω and Ψ must give the CPU's losses. Needs no Node, so
// it runs on GPU machines that have only the CUDA toolkit.
//
//   eb_backend_ops [--lib DIR] [--bench]
//
// Exit status 0 when every case passed (backends that are unavailable are reported as
// skipped, with the reason), 1 otherwise.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "../../native/src/core/mlp.h"
#include "../../native/src/core/registry.h"
#include "eb_backend.h"

namespace {

int g_failed = 0, g_passed = 0;

struct Rng {
    uint64_t s;
    explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
    float uniform() {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        return (float)(s >> 40) / 16777216.0f;
    }
    std::vector<float> vec(size_t n, float lo = -1, float hi = 1) {
        std::vector<float> v(n);
        for (auto &x : v) x = lo + (hi - lo) * uniform();
        return v;
    }
};

double nmse(const std::vector<float> &ref, const std::vector<float> &got) {
    double num = 0, den = 0;
    for (size_t i = 0; i < ref.size(); i++) {
        if (std::isnan(ref[i]) != std::isnan(got[i]) || std::isinf(ref[i]) != std::isinf(got[i])) return INFINITY;
        if (!std::isfinite(ref[i])) continue;
        const double d = (double)ref[i] - got[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    return den == 0 ? num : num / den;
}

void report(const std::string &what, const char *backend, double err, double limit, const char *metric = "NMSE") {
    const bool ok = err <= limit;
    (ok ? g_passed : g_failed)++;
    printf("  %-52s %-5s %s=%.3e (limit %.0e)  %s\n", what.c_str(), backend, metric, err, limit, ok ? "OK" : "FAIL");
}

// Float32 losses make finite differences noisy and ReLU kinks make single probes wrong, so
// the check is a relative error with a floor, as in test/native/mlp.test.ts.
double worst_relative(const std::vector<float> &fd, const std::vector<float> &bp) {
    double worst = 0;
    for (size_t i = 0; i < fd.size(); i++)
        worst = std::max(worst, std::fabs((double)fd[i] - bp[i]) / std::max(1e-2, (double)std::fabs(fd[i]) + std::fabs(bp[i])));
    return worst;
}

// A device buffer with a guard region after it, so out-of-bounds writes are caught.
struct Buf {
    eb_backend be;
    void *p = nullptr;
    size_t bytes = 0;
    static constexpr size_t kGuard = 256;
    Buf(eb_backend b, size_t n) : be(b), bytes(n) {
        p = be.iface->alloc(be.ctx, bytes + kGuard);
        std::vector<uint8_t> g(bytes + kGuard, 0xA5);
        be.iface->upload(be.ctx, p, g.data(), g.size());
    }
    ~Buf() { be.iface->release(be.ctx, p); }
    template <typename T> void set(const std::vector<T> &v) { be.iface->upload(be.ctx, p, v.data(), v.size() * sizeof(T)); }
    template <typename T> std::vector<T> get() const {
        std::vector<T> v(bytes / sizeof(T));
        be.iface->download(be.ctx, v.data(), p, bytes);
        return v;
    }
    bool guard_intact() const {
        std::vector<uint8_t> g(bytes + kGuard);
        be.iface->download(be.ctx, g.data(), p, g.size());
        for (size_t i = bytes; i < g.size(); i++)
            if (g[i] != 0xA5) return false;
        return true;
    }
    float *f() { return static_cast<float *>(p); }
    int32_t *i() { return static_cast<int32_t *>(p); }
};

// An op case: runs on a backend and returns its outputs, concatenated.
struct OpCase {
    std::string name;
    double limit;
    std::function<std::vector<float>(eb_backend, bool &guards_ok)> run;
};

std::vector<float> concat(std::initializer_list<std::vector<float>> parts) {
    std::vector<float> out;
    for (auto &p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

std::vector<OpCase> op_cases() {
    std::vector<OpCase> cs;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (auto dims : {std::vector<int>{77, 53, 129}, std::vector<int>{128, 1024, 512}, std::vector<int>{1, 10, 128}}) {
                const int m = dims[0], n = dims[1], k = dims[2];
                cs.push_back({"gemm(ta=" + std::to_string(ta) + ",tb=" + std::to_string(tb) + "," + std::to_string(m) + "x" +
                                  std::to_string(n) + "x" + std::to_string(k) + ",beta=0.5)",
                              1e-7, [=](eb_backend be, bool &g) {
                                  Rng r(1);
                                  Buf a(be, sizeof(float) * m * k), b(be, sizeof(float) * k * n), c(be, sizeof(float) * m * n);
                                  a.set(r.vec((size_t)m * k)); b.set(r.vec((size_t)k * n)); c.set(r.vec((size_t)m * n));
                                  be.iface->gemm(be.ctx, ta, tb, m, n, k, 0.7f, a.f(), b.f(), 0.5f, c.f());
                                  g = c.guard_intact();
                                  return c.get<float>();
                              }});
            }
    for (int relu = 0; relu < 2; relu++) {
        cs.push_back({std::string("bias_act(relu=") + (relu ? "1" : "0") + ",100x300)", 1e-12, [=](eb_backend be, bool &g) {
                          Rng r(2);
                          Buf y(be, sizeof(float) * 100 * 300), bias(be, sizeof(float) * 300);
                          y.set(r.vec(30000)); bias.set(r.vec(300));
                          be.iface->bias_act(be.ctx, y.f(), bias.f(), 100, 300, relu);
                          g = y.guard_intact();
                          return y.get<float>();
                      }});
        cs.push_back({std::string("act_bias_grad(relu=") + (relu ? "1" : "0") + ",128x1024)", 1e-10, [=](eb_backend be, bool &g) {
                          Rng r(3);
                          Buf dy(be, sizeof(float) * 128 * 1024), y(be, sizeof(float) * 128 * 1024), db(be, sizeof(float) * 1024);
                          dy.set(r.vec(131072)); y.set(r.vec(131072));
                          be.iface->act_bias_grad(be.ctx, dy.f(), y.f(), 128, 1024, relu, db.f());
                          g = dy.guard_intact() && db.guard_intact();
                          return concat({dy.get<float>(), db.get<float>()});
                      }});
    }
    cs.push_back({"add(10000)", 1e-14, [](eb_backend be, bool &g) {
                      Rng r(4);
                      Buf y(be, sizeof(float) * 10000), x(be, sizeof(float) * 10000);
                      y.set(r.vec(10000)); x.set(r.vec(10000));
                      be.iface->add(be.ctx, y.f(), x.f(), 10000);
                      g = y.guard_intact();
                      return y.get<float>();
                  }});
    cs.push_back({"fill(999)", 0, [](eb_backend be, bool &g) {
                      Buf y(be, sizeof(float) * 999);
                      be.iface->fill(be.ctx, y.f(), 3.25f, 999);
                      g = y.guard_intact();
                      return y.get<float>();
                  }});
    cs.push_back({"gather+gather_i32(200 of 1000 rows x 37)", 0, [](eb_backend be, bool &g) {
                      Rng r(5);
                      Buf src(be, sizeof(float) * 1000 * 37), dst(be, sizeof(float) * 200 * 37), idx(be, sizeof(int32_t) * 200);
                      Buf lab(be, sizeof(int32_t) * 1000), lout(be, sizeof(int32_t) * 200);
                      std::vector<int32_t> ix(200), l(1000);
                      for (auto &v : ix) v = (int32_t)(r.uniform() * 1000);
                      for (int i = 0; i < 1000; i++) l[i] = i * 7;
                      src.set(r.vec(37000)); idx.set(ix); lab.set(l);
                      be.iface->gather(be.ctx, dst.f(), src.f(), idx.i(), 200, 37);
                      be.iface->gather_i32(be.ctx, lout.i(), lab.i(), idx.i(), 200);
                      g = dst.guard_intact() && lout.guard_intact();
                      auto out = dst.get<float>();
                      for (int32_t v : lout.get<int32_t>()) out.push_back((float)v);
                      return out;
                  }});
    cs.push_back({"softmax_xent(300x10)", 1e-10, [](eb_backend be, bool &g) {
                      Rng r(6);
                      Buf z(be, sizeof(float) * 3000), lab(be, sizeof(int32_t) * 300), dl(be, sizeof(float) * 3000), acc(be, 8);
                      std::vector<int32_t> l(300);
                      for (auto &v : l) v = (int32_t)(r.uniform() * 10);
                      z.set(r.vec(3000, -8, 8)); lab.set(l); acc.set(std::vector<float>{0, 0});
                      be.iface->softmax_xent(be.ctx, z.f(), lab.i(), 300, 10, dl.f(), acc.f());
                      g = dl.guard_intact() && acc.guard_intact();
                      return concat({dl.get<float>(), acc.get<float>()});
                  }});
    cs.push_back({"mse(257x128)", 1e-10, [](eb_backend be, bool &g) {
                      Rng r(7);
                      const size_t n = 257 * 128;
                      Buf p(be, sizeof(float) * n), t(be, sizeof(float) * n), d(be, sizeof(float) * n), acc(be, 8);
                      p.set(r.vec(n)); t.set(r.vec(n)); acc.set(std::vector<float>{0, 0});
                      be.iface->mse(be.ctx, p.f(), t.f(), 257, 128, d.f(), acc.f());
                      g = d.guard_intact() && acc.guard_intact();
                      return concat({d.get<float>(), acc.get<float>()});
                  }});
    cs.push_back({"softmax_xent_mix(300x10,lam=0.3)", 1e-10, [](eb_backend be, bool &g) {
                      Rng r(14);
                      Buf z(be, sizeof(float) * 3000), lab(be, sizeof(int32_t) * 300), lab2(be, sizeof(int32_t) * 300),
                          dl(be, sizeof(float) * 3000), acc(be, 8);
                      std::vector<int32_t> l(300), l2(300);
                      for (int i = 0; i < 300; i++) { l[i] = (int32_t)(r.uniform() * 10); l2[i] = (int32_t)(r.uniform() * 10); }
                      z.set(r.vec(3000, -8, 8)); lab.set(l); lab2.set(l2); acc.set(std::vector<float>{0, 0});
                      be.iface->softmax_xent_mix(be.ctx, z.f(), lab.i(), lab2.i(), 0.3f, 300, 10, dl.f(), acc.f());
                      g = dl.guard_intact() && acc.guard_intact();
                      return concat({dl.get<float>(), acc.get<float>()});
                  }});
    cs.push_back({"mix(10000,lam=0.7)", 1e-14, [](eb_backend be, bool &g) {
                      Rng r(15);
                      Buf y(be, sizeof(float) * 10000), x(be, sizeof(float) * 10000);
                      y.set(r.vec(10000)); x.set(r.vec(10000));
                      be.iface->mix(be.ctx, y.f(), x.f(), 0.7f, 10000);
                      g = y.guard_intact();
                      return y.get<float>();
                  }});
    cs.push_back({"class_stats(2 batches of 128x32, 5 classes)", 1e-10, [](eb_backend be, bool &g) {
                      Rng r(16);
                      Buf f(be, sizeof(float) * 128 * 32), lab(be, sizeof(int32_t) * 128), mean(be, sizeof(float) * 5 * 32),
                          cov(be, sizeof(float) * 5 * 32 * 32), count(be, sizeof(float) * 5);
                      mean.set(std::vector<float>(160, 0)); cov.set(std::vector<float>(5120, 0)); count.set(std::vector<float>(5, 0));
                      for (int b = 0; b < 2; b++) {
                          std::vector<int32_t> l(128);
                          for (auto &v : l) v = (int32_t)(r.uniform() * 4);  // class 4 never occurs
                          f.set(r.vec(128 * 32)); lab.set(l);
                          be.iface->class_stats(be.ctx, f.f(), lab.i(), 128, 32, 5, mean.f(), cov.f(), count.f());
                      }
                      g = mean.guard_intact() && cov.guard_intact() && count.guard_intact();
                      return concat({mean.get<float>(), cov.get<float>(), count.get<float>()});
                  }});
    cs.push_back({"isda_xent(64 rows, 5 classes, d=16, ratio=0.7)", 1e-9, [](eb_backend be, bool &g) {
                      Rng r(17);
                      const int m = 64, c = 5, d = 16;
                      Buf z(be, sizeof(float) * m * c), lab(be, sizeof(int32_t) * m), w(be, sizeof(float) * c * d),
                          cov(be, sizeof(float) * c * d * d), scratch(be, sizeof(float) * c * c * (d + 2)),
                          dl(be, sizeof(float) * m * c), dw(be, sizeof(float) * c * d), acc(be, 8);
                      std::vector<int32_t> l(m);
                      for (auto &v : l) v = (int32_t)(r.uniform() * c);
                      // A symmetric covariance per class: A Aᵀ / d.
                      std::vector<float> a = r.vec((size_t)c * d * d), cv((size_t)c * d * d, 0);
                      for (int k = 0; k < c; k++)
                          for (int p = 0; p < d; p++)
                              for (int q = 0; q < d; q++)
                                  for (int t = 0; t < d; t++) cv[((size_t)k * d + p) * d + q] += a[((size_t)k * d + p) * d + t] * a[((size_t)k * d + q) * d + t] / d;
                      z.set(r.vec((size_t)m * c, -4, 4)); lab.set(l); w.set(r.vec((size_t)c * d)); cov.set(cv);
                      acc.set(std::vector<float>{0, 0});
                      be.iface->isda_xent(be.ctx, z.f(), lab.i(), w.f(), cov.f(), 0.7f, m, c, d, scratch.f(), dl.f(), dw.f(), acc.f());
                      g = dl.guard_intact() && dw.guard_intact() && acc.guard_intact() && scratch.guard_intact();
                      return concat({dl.get<float>(), dw.get<float>(), acc.get<float>()});
                  }});
    for (int nest = 0; nest < 2; nest++)
        cs.push_back({std::string("sgd(momentum=0.9,wd=5e-4,nesterov=") + (nest ? "1" : "0") + ",x3 steps)", 1e-12,
                      [=](eb_backend be, bool &g) {
                          Rng r(8);
                          Buf w(be, sizeof(float) * 5000), gr(be, sizeof(float) * 5000), v(be, sizeof(float) * 5000);
                          w.set(r.vec(5000)); gr.set(r.vec(5000)); v.set(r.vec(5000));
                          for (int s = 0; s < 3; s++) be.iface->sgd(be.ctx, w.f(), gr.f(), v.f(), 5000, 0.05f, 0.9f, 5e-4f, nest);
                          g = w.guard_intact() && v.guard_intact();
                          return concat({w.get<float>(), v.get<float>()});
                      }});
    cs.push_back({"adam(wd=1e-2,x3 steps)", 1e-10, [](eb_backend be, bool &g) {
                      Rng r(9);
                      Buf w(be, sizeof(float) * 5000), gr(be, sizeof(float) * 5000), m(be, sizeof(float) * 5000), v(be, sizeof(float) * 5000);
                      w.set(r.vec(5000)); gr.set(r.vec(5000)); m.set(std::vector<float>(5000, 0)); v.set(std::vector<float>(5000, 0));
                      for (int s = 1; s <= 3; s++)
                          be.iface->adam(be.ctx, w.f(), gr.f(), m.f(), v.f(), 5000, 1e-3f, 0.9f, 0.999f, 1e-8f, 1e-2f, s);
                      g = w.guard_intact();
                      return concat({w.get<float>(), m.get<float>(), v.get<float>()});
                  }});
    // Augmentation: exact ops must agree to the bit; bilinear and colour ones to float rounding.
    struct A { const char *name; std::vector<eb_aug_op> ops; double limit; int oh, ow; bool indices = false; };
    const std::vector<A> augs = {
        {"hflip", {{EB_AUG_HFLIP, 1, 0, 0, 0}}, 0, 32, 32},
        {"vflip+rot90(k=1)", {{EB_AUG_VFLIP, 1, 0, 0, 0}, {EB_AUG_ROT90, 1, 0, 0, 1}}, 0, 32, 32},
        {"crop(pad=4)+hflip(p=0.5)", {{EB_AUG_TRANSLATE, 1, 0, 0, 4}, {EB_AUG_HFLIP, 0.5f, 0, 0, 0}}, 0, 32, 32},
        {"rotate[-30,30]", {{EB_AUG_ROTATE, 1, -30, 30, 0}}, 1e-9, 32, 32},
        {"colour jitter+cutout", {{EB_AUG_BRIGHTNESS, 1, 0.4f, 0, 0}, {EB_AUG_CONTRAST, 1, 0.4f, 0, 0},
                                  {EB_AUG_SATURATION, 1, 0.4f, 0, 0}, {EB_AUG_CUTOUT, 1, 0, 0, 8}}, 1e-9, 32, 32},
        {"resize 32->48x40 + hflip", {{EB_AUG_HFLIP, 1, 0, 0, 0}}, 1e-9, 48, 40},
        {"crop+rotate+cutout, per-image indices", {{EB_AUG_TRANSLATE, 1, 0, 0, 4}, {EB_AUG_ROTATE, 1, -20, 20, 0}, {EB_AUG_CUTOUT, 1, 0, 0, 6}}, 1e-9, 32, 32, true},
    };
    for (const A &a : augs)
        cs.push_back({std::string("augment(") + a.name + ",64 images)", a.limit, [a](eb_backend be, bool &g) {
                          Rng r(10);
                          std::vector<uint8_t> src(64 * 32 * 32 * 3);
                          for (auto &v : src) v = (uint8_t)(r.uniform() * 256);
                          std::vector<float> dst((size_t)64 * 3 * a.oh * a.ow);
                          eb_aug_job job{};
                          job.src = src.data(); job.n = 64; job.in_h = 32; job.in_w = 32;
                          job.dst = dst.data(); job.out_h = a.oh; job.out_w = a.ow;
                          job.scale = 1.0f / 255; job.mean[0] = job.mean[1] = job.mean[2] = 0.5f;
                          job.std[0] = job.std[1] = job.std[2] = 0.25f;
                          job.ops = a.ops.data(); job.n_ops = (int)a.ops.size(); job.seed = 42; job.index_offset = 1000;
                          std::vector<int64_t> idx(64);
                          for (int i = 0; i < 64; i++) idx[i] = 7919LL * i + 12345;
                          if (a.indices) job.indices = idx.data();
                          g = true;
                          if (!be.iface->augment) { dst.assign(1, NAN); return dst; }
                          be.iface->augment(be.ctx, &job);
                          return dst;
                      }});
    return cs;
}

// Central finite differences on the parameters of an MLP living on the backend.
// The reference backend's own GEMM against a double-precision loop, at the shapes of a training
// step (batch 128 and a last batch of 40, D = 128, 1024 hidden) and beyond, every transpose:
// the CPU backend sends some of them to libxsmm and the rest to OpenBLAS (cpu_backend.cpp), and
// both must compute op(A)·op(B) of the same row-major operands.
void gemm_reference(eb_backend be) {
    struct Shape { int m, n, k; };
    for (const Shape sh : {Shape{128, 1024, 128}, Shape{1024, 128, 128}, Shape{1024, 128, 40}, Shape{40, 1024, 128},
                           Shape{128, 128, 5}, Shape{5, 128, 128}, Shape{128, 256, 384}, Shape{256, 128, 512},
                           Shape{128, 2048, 128}, Shape{64, 64, 64}})
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                const auto [m, n, k] = sh;
                Rng r(21);
                const std::vector<float> av = r.vec((size_t)m * k), bv = r.vec((size_t)k * n);
                std::vector<float> want((size_t)m * n);
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++) {
                        double acc = 0;
                        for (int q = 0; q < k; q++)
                            acc += (double)av[ta ? (size_t)q * m + i : (size_t)i * k + q] * bv[tb ? (size_t)j * k + q : (size_t)q * n + j];
                        want[(size_t)i * n + j] = (float)acc;
                    }
                Buf a(be, av.size() * sizeof(float)), b(be, bv.size() * sizeof(float)), c(be, want.size() * sizeof(float));
                a.set(av);
                b.set(bv);
                be.iface->gemm(be.ctx, ta, tb, m, n, k, 1.0f, a.f(), b.f(), 0.0f, c.f());
                const bool intact = c.guard_intact();
                report("gemm against a double loop (ta=" + std::to_string(ta) + ",tb=" + std::to_string(tb) + "," +
                           std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k) + ")",
                       "cpu", intact ? nmse(want, c.get<float>()) : INFINITY, 1e-12);
            }
}

void grad_check(eb_backend be, bool labels, bool residual) {
    Rng r(11);
    const std::vector<int> sizes = residual ? std::vector<int>{6, 12, 6} : std::vector<int>{6, 9, 7, 4};
    eb::Mlp m(be, sizes, 5, residual);
    const int n = 16;
    std::vector<float> x = r.vec((size_t)n * sizes[0]), t = r.vec((size_t)n * sizes.back());
    std::vector<int32_t> lab(n);
    for (auto &v : lab) v = (int32_t)(r.uniform() * sizes.back());
    eb::Supervision s;
    s.n = n;
    if (labels) s.labels = lab.data();
    else s.targets = t.data();
    auto params = m.get_params();
    if (residual) { params[2] = r.vec(params[2].size(), -0.3f, 0.3f); }
    std::string err;
    m.set_params(params, err);
    double loss;
    std::vector<std::vector<float>> grads, scratch;
    m.gradients(x.data(), s, loss, grads, err);
    std::vector<float> fd, bp;
    const float eps = 3e-3f;  // small enough to rarely cross a ReLU kink, large enough for float32 losses
    for (size_t tsr = 0; tsr < params.size(); tsr++)
        for (int probe = 0; probe < 8; probe++) {
            const size_t i = (size_t)(r.uniform() * params[tsr].size());
            const float orig = params[tsr][i];
            double up, down;
            params[tsr][i] = orig + eps; m.set_params(params, err); m.gradients(x.data(), s, up, scratch, err);
            params[tsr][i] = orig - eps; m.set_params(params, err); m.gradients(x.data(), s, down, scratch, err);
            params[tsr][i] = orig; m.set_params(params, err);
            fd.push_back((float)((up - down) / (2 * eps)));
            bp.push_back(grads[tsr][i]);
        }
    report(std::string("finite differences: ") + (labels ? "softmax-xent" : "mse") + (residual ? " residual" : "") +
               " mlp",
           be.iface->name(be.ctx), worst_relative(fd, bp), 3e-2, "max rel err");
}

// ISDA against closed forms. (1) Two classes, d = 2, Σ_0 = diag(2, 1), w_0 = 0, w_1 = (1, 1):
// σ[0][1] = ratio/2 · (1, 1) Σ_0 (1, 1)ᵀ = 1.5 ratio, so a row of class 0 with logits (0.2, -0.1)
// at ratio 1 has loss log(e^0.2 + e^1.4) - 0.2. (2) Two batches through class_stats give the
// mean and biased covariance of all their rows of each class, computed directly.
void isda_closed_form(eb_backend be) {
    const char *name = be.iface->name(be.ctx);
    Buf z(be, 8), lab(be, 4), w(be, 16), cov(be, 32), scratch(be, 4 * 4), dl(be, 8), dw(be, 16), acc(be, 8);
    z.set(std::vector<float>{0.2f, -0.1f}); lab.set(std::vector<int32_t>{0}); w.set(std::vector<float>{0, 0, 1, 1});
    cov.set(std::vector<float>{2, 0, 0, 1, 1, 0, 0, 1}); acc.set(std::vector<float>{0, 0});
    be.iface->isda_xent(be.ctx, z.f(), lab.i(), w.f(), cov.f(), 1.0f, 1, 2, 2, scratch.f(), dl.f(), dw.f(), acc.f());
    const double want = std::log(std::exp(0.2) + std::exp(1.4)) - 0.2;
    report("isda_xent against its closed form (2 classes, d=2)", name, std::fabs(acc.get<float>()[0] - want), 1e-6, "abs err");

    Rng r(18);
    const int m = 50, d = 3;
    std::vector<float> f = r.vec((size_t)2 * m * d);
    std::vector<int32_t> l(2 * m);
    for (auto &v : l) v = (int32_t)(r.uniform() * 2);
    Buf fb(be, sizeof(float) * m * d), lb(be, sizeof(int32_t) * m), mean(be, sizeof(float) * 2 * d), cv(be, sizeof(float) * 2 * d * d),
        count(be, sizeof(float) * 2);
    mean.set(std::vector<float>(2 * d, 0)); cv.set(std::vector<float>(2 * d * d, 0)); count.set(std::vector<float>(2, 0));
    for (int b = 0; b < 2; b++) {
        fb.set(std::vector<float>(f.begin() + (size_t)b * m * d, f.begin() + (size_t)(b + 1) * m * d));
        lb.set(std::vector<int32_t>(l.begin() + b * m, l.begin() + (b + 1) * m));
        be.iface->class_stats(be.ctx, fb.f(), lb.i(), m, d, 2, mean.f(), cv.f(), count.f());
    }
    const auto gm = mean.get<float>(), gc = cv.get<float>();
    double worst = 0;
    for (int k = 0; k < 2; k++) {
        std::vector<double> mu(d, 0);
        int n = 0;
        for (int i = 0; i < 2 * m; i++)
            if (l[i] == k) { n++; for (int t = 0; t < d; t++) mu[t] += f[(size_t)i * d + t]; }
        for (int t = 0; t < d; t++) { mu[t] /= n; worst = std::max(worst, std::fabs(mu[t] - gm[(size_t)k * d + t])); }
        for (int p = 0; p < d; p++)
            for (int q = 0; q < d; q++) {
                double s = 0;
                for (int i = 0; i < 2 * m; i++)
                    if (l[i] == k) s += (f[(size_t)i * d + p] - mu[p]) * (f[(size_t)i * d + q] - mu[q]);
                worst = std::max(worst, std::fabs(s / n - gc[((size_t)k * d + p) * d + q]));
            }
    }
    report("class_stats merged over 2 batches = all rows' statistics", name, worst, 1e-5, "max abs err");
}

// ISDA's gradient in w by central differences of its loss, logits = F Wᵀ computed here:
// dL/dW = dlogitsᵀ F (the logits' path) + dw (σ's path).
void isda_grad_check(eb_backend be) {
    Rng r(19);
    const int m = 12, c = 4, d = 5;
    std::vector<float> f = r.vec((size_t)m * d), wv = r.vec((size_t)c * d), cv((size_t)c * d * d, 0);
    for (int k = 0; k < c; k++)
        for (int p = 0; p < d; p++) cv[((size_t)k * d + p) * d + p] = 0.5f + r.uniform();
    std::vector<int32_t> l(m);
    for (auto &v : l) v = (int32_t)(r.uniform() * c);
    Buf z(be, sizeof(float) * m * c), lab(be, sizeof(int32_t) * m), w(be, sizeof(float) * c * d), cov(be, sizeof(float) * c * d * d),
        scratch(be, sizeof(float) * c * c * (d + 2)), dl(be, sizeof(float) * m * c), dw(be, sizeof(float) * c * d), acc(be, 8);
    lab.set(l); cov.set(cv);
    auto loss = [&](const std::vector<float> &W, std::vector<float> *grad) {
        std::vector<float> logits((size_t)m * c, 0);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < c; j++)
                for (int t = 0; t < d; t++) logits[(size_t)i * c + j] += f[(size_t)i * d + t] * W[(size_t)j * d + t];
        z.set(logits); w.set(W); acc.set(std::vector<float>{0, 0});
        be.iface->isda_xent(be.ctx, z.f(), lab.i(), w.f(), cov.f(), 0.8f, m, c, d, scratch.f(), dl.f(), dw.f(), acc.f());
        if (grad) {
            *grad = dw.get<float>();
            const auto dlv = dl.get<float>();
            for (int j = 0; j < c; j++)
                for (int t = 0; t < d; t++)
                    for (int i = 0; i < m; i++) (*grad)[(size_t)j * d + t] += dlv[(size_t)i * c + j] * f[(size_t)i * d + t];
        }
        return (double)acc.get<float>()[0] / m;
    };
    std::vector<float> grad, fd, bp;
    loss(wv, &grad);
    const float eps = 3e-3f;
    for (size_t i = 0; i < wv.size(); i++) {
        const float orig = wv[i];
        wv[i] = orig + eps;
        const double up = loss(wv, nullptr);
        wv[i] = orig - eps;
        const double down = loss(wv, nullptr);
        wv[i] = orig;
        fd.push_back((float)((up - down) / (2 * eps)));
        bp.push_back(grad[i]);
    }
    report("finite differences: isda_xent in w (logits and σ paths)", be.iface->name(be.ctx), worst_relative(fd, bp), 3e-2, "max rel err");
}

// Per-epoch losses of 20 one-batch epochs (20 optimiser steps), and the final weights.
std::vector<float> train_steps(eb_backend be, bool omega, float mixup = 0, float isda = 0) {
    Rng r(12);
    const std::vector<int> sizes = omega ? std::vector<int>{128, 256, 128} : std::vector<int>{128, 1024, 128, 10};
    eb::Mlp m(be, sizes, 3, omega);
    const int n = 128;
    std::vector<float> x = r.vec((size_t)n * 128), t = r.vec((size_t)n * 128);
    std::vector<int32_t> lab(n);
    for (auto &v : lab) v = (int32_t)(r.uniform() * 10);
    eb::TrainData d;
    d.x = x.data();
    d.y.n = n;
    if (omega) d.y.targets = t.data();
    else d.y.labels = lab.data();
    eb::TrainConfig cfg;
    cfg.batch = n;
    cfg.epochs = 20;
    cfg.seed = 1;
    cfg.opt.lr = omega ? 0.05f : 0.02f;
    cfg.opt.momentum = 0.9f;
    cfg.mixup_alpha = mixup;
    cfg.isda_lambda = isda;
    std::atomic<bool> cancel{false};
    std::vector<float> losses;
    std::string err;
    m.train(d, cfg, cancel, [&](const eb::EpochStats &s) { losses.push_back((float)s.loss); }, err);
    return losses;
}

void bench(eb_backend be, int d, double &sps) {
    Rng r(13);
    const int n = 128 * 64;
    std::vector<float> x = r.vec((size_t)n * d);
    std::vector<int32_t> lab(n);
    for (auto &v : lab) v = (int32_t)(r.uniform() * 10);
    eb::Mlp m(be, {d, 1024, 128, 10}, 1, false);
    eb::TrainData td;
    td.x = x.data();
    td.y.n = n;
    td.y.labels = lab.data();
    eb::TrainConfig cfg;
    cfg.batch = 128;
    cfg.epochs = 1;
    std::atomic<bool> cancel{false};
    std::string err;
    m.train(td, cfg, cancel, [](const eb::EpochStats &) {}, err);
    cfg.epochs = 10;
    const auto t0 = std::chrono::steady_clock::now();
    m.train(td, cfg, cancel, [](const eb::EpochStats &) {}, err);
    sps = (double)n * cfg.epochs / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char **argv) {
    std::string dir = ".";
    bool do_bench = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--lib") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--bench")) do_bench = true;
    }
    eb::registry_set_library_dir(dir);
    eb_backend cpu;
    eb_cpu_backend_init(0, &cpu);
    printf("eb_backend_ops: reference backend cpu (%s)\n", cpu.iface->device_name(cpu.ctx));

    // The CPU backend checks its own GEMM and gradients; every other backend is compared with it.
    gemm_reference(cpu);
    grad_check(cpu, true, false);
    grad_check(cpu, false, false);
    grad_check(cpu, false, true);
    isda_closed_form(cpu);
    isda_grad_check(cpu);

    for (const eb::BackendEntry &e : eb::list_backends()) {
        if (e.name == "cpu") continue;
        if (!e.available) {
            printf("backend %s: SKIPPED, not available: %s\n", e.name.c_str(), e.reason.c_str());
            continue;
        }
        printf("backend %s: %s, %.1f GiB\n", e.name.c_str(), e.device.c_str(), e.memory_bytes / 1073741824.0);
        eb_backend be;
        std::string err;
        eb::get_backend(e.name, be, err);
        for (const OpCase &c : op_cases()) {
            bool g1 = true, g2 = true;
            const auto ref = c.run(cpu, g1), got = c.run(be, g2);
            if (!g2) {
                g_failed++;
                printf("  %-52s %-5s wrote past its buffer  FAIL\n", c.name.c_str(), e.name.c_str());
                continue;
            }
            if (got.size() == 1 && std::isnan(got[0])) {
                printf("  %-52s %-5s not supported (the CPU one is used)\n", c.name.c_str(), e.name.c_str());
                continue;
            }
            report(c.name, e.name.c_str(), nmse(ref, got), c.limit);
        }
        grad_check(be, true, false);
        grad_check(be, false, false);
        grad_check(be, false, true);
        isda_closed_form(be);
        isda_grad_check(be);
        for (const auto &[what, mixup, isda] : {std::tuple{"Ψ with mixup (α=0.4)", 0.4f, 0.0f}, std::tuple{"Ψ with ISDA (λ0=0.5)", 0.0f, 0.5f}}) {
            const auto a = train_steps(cpu, false, mixup, isda), b = train_steps(be, false, mixup, isda);
            report(std::string("20 training steps of ") + what + ": losses", e.name.c_str(), nmse(a, b), 1e-8);
        }
        for (bool omega : {true, false}) {
            const auto a = train_steps(cpu, omega), b = train_steps(be, omega);
            report(std::string("20 training steps of ") + (omega ? "Ω (128→256→128, residual, MSE)" : "Ψ (128→1024→128→10)") +
                       ": losses",
                   e.name.c_str(), nmse(a, b), 1e-8);
            printf("    first/last loss cpu %.6f/%.6f  %s %.6f/%.6f\n", a.front(), a.back(), e.name.c_str(), b.front(),
                   b.back());
        }
        if (do_bench)
            for (int d : {128, 512}) {
                double s_cpu, s_be;
                bench(cpu, d, s_cpu);
                bench(be, d, s_be);
                printf("BENCH gpu psi-d%d-b128 %s=%.0f cpu=%.0f samples/s ratio=%.2f\n", d, e.name.c_str(), s_be, s_cpu,
                       s_be / s_cpu);
            }
    }
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
