#include "state/throughput.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <numeric>
#include <random>

#include <fmt/format.h>
#include <lmdb.h>

#include "common/bench_util.h"
#include "slate/slate.h"

namespace slate::bench::state {
namespace {

constexpr int kPerTxn = 1000;
constexpr long kWant = static_cast<long>(kValueLen);  // what every get returns

// The keys, NUL-terminated (libslate's form), 16 bytes each, sorted or in
// one fixed random order, packed so that walking them costs both sides the
// same.
class KeySet {
 public:
  KeySet(int n, bool random) : n_(n), buf_(static_cast<std::size_t>(n) * (kKeyLen + 1)) {
    std::vector<int> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    if (random) std::shuffle(order.begin(), order.end(), std::mt19937_64(20261127));
    for (int j = 0; j < n; ++j) {
      (void)std::snprintf(&buf_[Offset(j)], kKeyLen + 1, "k%015d", order[static_cast<size_t>(j)]);
    }
  }
  const char* at(int j) const { return &buf_[Offset(j)]; }
  int size() const { return n_; }

 private:
  static std::size_t Offset(int j) { return static_cast<std::size_t>(j) * (kKeyLen + 1); }
  int n_;
  std::vector<char> buf_;
};

// A raw LMDB environment opened as StateStore::Open opens its own.
class RawLmdb {
 public:
  static std::unique_ptr<RawLmdb> Open(const std::string& dir, std::uint64_t map_size) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    auto raw = std::make_unique<RawLmdb>();
    int rc = mdb_env_create(&raw->env_);
    if (rc == 0) rc = mdb_env_set_mapsize(raw->env_, map_size);
    if (rc == 0) rc = mdb_env_open(raw->env_, dir.c_str(), MDB_NOTLS | MDB_NOSYNC, 0600);
    MDB_txn* txn = nullptr;
    if (rc == 0) rc = mdb_txn_begin(raw->env_, nullptr, MDB_RDONLY, &txn);
    if (rc == 0) rc = mdb_dbi_open(txn, nullptr, 0, &raw->dbi_);
    if (rc == 0) rc = mdb_txn_commit(txn);
    if (rc == 0) rc = mdb_txn_begin(raw->env_, nullptr, MDB_RDONLY, &raw->reader_);
    if (rc != 0) {
      fmt::print(stderr, "raw LMDB in {}: {}\n", dir, mdb_strerror(rc));
      return nullptr;
    }
    mdb_txn_reset(raw->reader_);
    return raw;
  }
  RawLmdb() = default;
  RawLmdb(const RawLmdb&) = delete;
  RawLmdb& operator=(const RawLmdb&) = delete;
  ~RawLmdb() {
    if (reader_ != nullptr) mdb_txn_abort(reader_);
    if (env_ != nullptr) mdb_env_close(env_);
  }

  MDB_txn* Begin(unsigned flags) const {
    MDB_txn* txn = nullptr;
    return mdb_txn_begin(env_, nullptr, flags, &txn) == 0 ? txn : nullptr;
  }
  int Put(MDB_txn* txn, const char* key, const char* val) const {
    MDB_val k{kKeyLen, const_cast<char*>(key)};
    MDB_val v{kValueLen, const_cast<char*>(val)};
    return mdb_put(txn, dbi_, &k, &v, 0);
  }
  // The value's size, copied into buf; -1 if absent or failed.
  long Get(MDB_txn* txn, const char* key, char* buf, std::size_t cap) const {
    MDB_val k{kKeyLen, const_cast<char*>(key)};
    MDB_val v{};
    if (mdb_get(txn, dbi_, &k, &v) != 0) return -1;
    std::memcpy(buf, v.mv_data, std::min(cap, v.mv_size));
    return static_cast<long>(v.mv_size);
  }
  // A get in its own (renewed) read transaction: StateStore::GetInto's work.
  long AutoGet(const char* key, char* buf, std::size_t cap) const {
    if (mdb_txn_renew(reader_) != 0) return -1;
    const long n = Get(reader_, key, buf, cap);
    mdb_txn_reset(reader_);
    return n;
  }
  // A put in its own write transaction: StateStore::Put's work.
  bool AutoPut(const char* key, const char* val) const {
    MDB_txn* txn = Begin(0);
    if (txn == nullptr) return false;
    if (Put(txn, key, val) != 0) {
      mdb_txn_abort(txn);
      return false;
    }
    return mdb_txn_commit(txn) == 0;
  }

 private:
  MDB_env* env_ = nullptr;
  MDB_dbi dbi_ = 0;
  MDB_txn* reader_ = nullptr;
};

// Runs `ops` operations from the first key on; false if a call failed.
using Run = std::function<bool(long ops)>;

struct Workload {
  const char* name;
  const char* slate_calls;
  const char* raw_calls;
  Run raw;
  Run slate;
};

// Walks the keys round and round.
class KeyWalk {
 public:
  explicit KeyWalk(const KeySet& keys) : keys_(keys) {}
  const char* Next() {
    const char* k = keys_.at(j_);
    if (++j_ == keys_.size()) j_ = 0;
    return k;
  }

 private:
  const KeySet& keys_;
  int j_ = 0;
};

char got[256];  // where gets copy values to

Workload PutsInTxns(const KeySet& keys, const RawLmdb& raw, const char* value) {
  return {"puts, 1000 per transaction", "slate_txn_put (slate_txn_begin/commit per 1000)",
          "mdb_put (mdb_txn_begin/commit per 1000)",
          [&keys, &raw, value](long ops) {
            KeyWalk walk(keys);
            for (long i = 0; i < ops; i += kPerTxn) {
              MDB_txn* txn = raw.Begin(0);
              if (txn == nullptr) return false;
              for (int j = 0; j < kPerTxn; ++j) {
                if (raw.Put(txn, walk.Next(), value) != 0) {
                  mdb_txn_abort(txn);
                  return false;
                }
              }
              if (mdb_txn_commit(txn) != 0) return false;
            }
            return true;
          },
          [&keys, value](long ops) {
            KeyWalk walk(keys);
            for (long i = 0; i < ops; i += kPerTxn) {
              slate_txn* txn = slate_txn_begin();
              if (txn == nullptr) return false;
              for (int j = 0; j < kPerTxn; ++j) {
                if (slate_txn_put(txn, walk.Next(), value, kValueLen) != SLATE_OK) {
                  slate_txn_abort(txn);
                  return false;
                }
              }
              if (slate_txn_commit(txn) != SLATE_OK) return false;
            }
            return true;
          }};
}

Workload Gets(const KeySet& keys, const RawLmdb& raw) {
  return {"gets, one read transaction each", "slate_state_get",
          "mdb_txn_renew, mdb_get, memcpy, mdb_txn_reset",
          [&keys, &raw](long ops) {
            KeyWalk walk(keys);
            for (long i = 0; i < ops; ++i) {
              if (raw.AutoGet(walk.Next(), got, sizeof got) != kWant) return false;
            }
            return true;
          },
          [&keys](long ops) {
            KeyWalk walk(keys);
            for (long i = 0; i < ops; ++i) {
              if (slate_state_get(walk.Next(), got, sizeof got) != kWant) return false;
            }
            return true;
          }};
}

Workload GetsInTxns(const KeySet& keys, const RawLmdb& raw) {
  return {"gets in a transaction, 1000 per transaction",
          "slate_txn_get (slate_txn_begin/abort per 1000)",
          "mdb_get, memcpy (mdb_txn_begin/abort per 1000)",
          [&keys, &raw](long ops) {
            KeyWalk walk(keys);
            for (long i = 0; i < ops; i += kPerTxn) {
              MDB_txn* txn = raw.Begin(0);
              if (txn == nullptr) return false;
              for (int j = 0; j < kPerTxn; ++j) {
                if (raw.Get(txn, walk.Next(), got, sizeof got) != kWant) {
                  mdb_txn_abort(txn);
                  return false;
                }
              }
              mdb_txn_abort(txn);
            }
            return true;
          },
          [&keys](long ops) {
            KeyWalk walk(keys);
            for (long i = 0; i < ops; i += kPerTxn) {
              slate_txn* txn = slate_txn_begin();
              if (txn == nullptr) return false;
              for (int j = 0; j < kPerTxn; ++j) {
                if (slate_txn_get(txn, walk.Next(), got, sizeof got) != kWant) {
                  slate_txn_abort(txn);
                  return false;
                }
              }
              slate_txn_abort(txn);
            }
            return true;
          }};
}

// One put per commit, raw: the baseline of both commit workloads.
bool RawCommits(const KeySet& keys, const RawLmdb& raw, const char* value, long ops) {
  KeyWalk walk(keys);
  for (long i = 0; i < ops; ++i) {
    if (!raw.AutoPut(walk.Next(), value)) return false;
  }
  return true;
}

Workload Commits(const KeySet& keys, const RawLmdb& raw, const char* value) {
  return {"commits, one put each", "slate_state_put", "mdb_txn_begin, mdb_put, mdb_txn_commit",
          [&keys, &raw, value](long ops) { return RawCommits(keys, raw, value, ops); },
          [&keys, value](long ops) {
            KeyWalk walk(keys);
            for (long i = 0; i < ops; ++i) {
              if (slate_state_put(walk.Next(), value, kValueLen) != SLATE_OK) return false;
            }
            return true;
          }};
}

Workload CommitsAsTxns(const KeySet& keys, const RawLmdb& raw, const char* value) {
  return {"commits, one put each, as a transaction",
          "slate_txn_begin, slate_txn_put, slate_txn_commit",
          "mdb_txn_begin, mdb_put, mdb_txn_commit",
          [&keys, &raw, value](long ops) { return RawCommits(keys, raw, value, ops); },
          [&keys, value](long ops) {
            KeyWalk walk(keys);
            for (long i = 0; i < ops; ++i) {
              slate_txn* txn = slate_txn_begin();
              if (txn == nullptr) return false;
              if (slate_txn_put(txn, walk.Next(), value, kValueLen) != SLATE_OK) {
                slate_txn_abort(txn);
                return false;
              }
              if (slate_txn_commit(txn) != SLATE_OK) return false;
            }
            return true;
          }};
}

// Seconds `run` took for `ops`; negative if a call failed.
double Time(const Run& run, long ops) {
  const std::int64_t t0 = MonoNs();
  if (!run(ops)) return -1;
  return static_cast<double>(MonoNs() - t0) / 1e9;
}

// Operations per sample: raw LMDB's rate, from doubling runs of at least
// 50 ms (which also warm both sides up), times the aimed-at length;
// a multiple of kPerTxn.
long Calibrate(const Workload& w, double seconds) {
  long ops = kPerTxn;
  double took = 0;
  while ((took = Time(w.raw, ops)) >= 0 && took < 0.05) ops *= 2;
  if (took < 0 || Time(w.slate, ops) < 0) return -1;
  const double rate = static_cast<double>(ops) / took;
  return std::max<long>(kPerTxn, std::lround(rate * seconds / kPerTxn) * kPerTxn);
}

bool Fill(const KeySet& keys, const RawLmdb& raw, const char* value) {
  for (int i = 0; i < keys.size(); i += kPerTxn) {
    MDB_txn* txn = raw.Begin(0);
    slate_txn* st = slate_txn_begin();
    bool ok = txn != nullptr && st != nullptr;
    for (int j = i; ok && j < std::min(keys.size(), i + kPerTxn); ++j) {
      ok = raw.Put(txn, keys.at(j), value) == 0 &&
           slate_txn_put(st, keys.at(j), value, kValueLen) == SLATE_OK;
    }
    if (!ok) {
      if (txn != nullptr) mdb_txn_abort(txn);
      slate_txn_abort(st);
      return false;
    }
    if (mdb_txn_commit(txn) != 0 || slate_txn_commit(st) != SLATE_OK) return false;
  }
  return true;
}

}  // namespace

bool MeasureThroughput(const ThroughputOptions& o, std::vector<ThroughputRow>* rows) {
  const KeySet keys(o.keys, o.random_order);
  auto raw = RawLmdb::Open(o.raw_dir, o.map_size);
  if (!raw) return false;
  std::vector<char> value(kValueLen);
  for (std::size_t i = 0; i < kValueLen; ++i) value[i] = static_cast<char>('a' + i % 26);
  if (!Fill(keys, *raw, value.data())) {
    fmt::print(stderr, "filling the stores failed: {}\n", slate_last_error());
    return false;
  }
  const char* v = value.data();
  for (const Workload& w : {PutsInTxns(keys, *raw, v), Gets(keys, *raw), GetsInTxns(keys, *raw),
                            Commits(keys, *raw, v), CommitsAsTxns(keys, *raw, v)}) {
    ThroughputRow row;
    row.name = w.name;
    row.slate_calls = w.slate_calls;
    row.raw_calls = w.raw_calls;
    row.ops = Calibrate(w, o.seconds);
    for (int r = 0; r < o.reps && row.ops > 0; ++r) {
      const bool raw_first = r % 2 == 0;
      double raw_s = 0;
      double slate_s = 0;
      if (raw_first) raw_s = Time(w.raw, row.ops);
      slate_s = Time(w.slate, row.ops);
      if (!raw_first) raw_s = Time(w.raw, row.ops);
      if (raw_s < 0 || slate_s < 0) {
        row.ops = -1;
        break;
      }
      row.raw_rate.push_back(static_cast<double>(row.ops) / raw_s);
      row.slate_rate.push_back(static_cast<double>(row.ops) / slate_s);
      row.raw_first.push_back(raw_first);
    }
    if (row.ops <= 0) {
      fmt::print(stderr, "{}: a call failed: {}\n", w.name, slate_last_error());
      return false;
    }
    rows->push_back(std::move(row));
  }
  return true;
}

}  // namespace slate::bench::state
