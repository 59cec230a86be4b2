// The shared pool's ledger: see shared_ledger.h and docs/shared-pool.md.
#include "budget/shared_ledger.h"

#include <sched.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "platform/os.h"

namespace execmem::budget::shared {
namespace {

static_assert(std::atomic<uint64_t>::is_always_lock_free &&
                  std::atomic<uint32_t>::is_always_lock_free &&
                  std::atomic<int32_t>::is_always_lock_free,
              "the segment's words must be lock-free (and so address-free) across processes");
static_assert(std::is_standard_layout_v<Segment>);

constexpr auto kRelaxed = std::memory_order_relaxed;
constexpr uint64_t kMaxCapacity = uint64_t{1} << 62;

uint64_t OwnStartTicks() { return os::ReadProcessStat(os::ProcessId()).start_ticks; }

// A process's name in the lock word.
uint64_t LockName(int pid, uint64_t start_ticks) {
  return (start_ticks << 32) | static_cast<uint32_t>(pid);
}

// Whether the process named in the lock word still runs: the pid exists,
// is not a zombie, and started at the named time (a reused pid is another
// process). Unknown (/proc unreadable for another reason): alive.
bool HolderAlive(uint64_t name) {
  const int pid = static_cast<int>(name & 0xffffffff);
  const os::ProcessStat st = os::ReadProcessStat(pid);
  if (!st.exists) return os::ProcessAlive(pid, 0);  // gone only if kill says ESRCH
  return st.state != 'Z' && st.state != 'X' && (st.start_ticks & 0xffffffff) == (name >> 32);
}

enum class Locked : uint8_t { kYes, kTakenOver, kTimedOut };

// Takes the segment's lock for `me`. Uncontended: one CAS. Contended: spins,
// then yields; a holder that has held it for a while is looked up in /proc,
// and taken over when it is dead. A live holder (even a stopped one) is
// waited for at most kLockWaitMs.
Locked Acquire(std::atomic<uint64_t>& word, uint64_t me) {
  uint64_t seen = 0;
  if (word.compare_exchange_strong(seen, me, std::memory_order_acquire, kRelaxed)) {
    return Locked::kYes;
  }
  uint64_t start_ms = 0;
  for (uint32_t round = 0;; ++round) {
    seen = word.load(kRelaxed);
    if (seen == 0) {
      if (word.compare_exchange_weak(seen, me, std::memory_order_acquire, kRelaxed)) {
        return Locked::kYes;
      }
      continue;
    }
    if (round < 128) {
      __builtin_ia32_pause();
      continue;
    }
    if (round < 1024) {
      os::Yield();
      continue;
    }
    // Held through a thousand yields: the holder may be dead, or stopped.
    if (!HolderAlive(seen)) {
      if (word.compare_exchange_strong(seen, me, std::memory_order_acquire, kRelaxed)) {
        return Locked::kTakenOver;
      }
      continue;
    }
    const uint64_t now = os::NowMs();
    if (start_ms == 0) start_ms = now;
    if (now - start_ms >= kLockWaitMs) return Locked::kTimedOut;
    os::SleepMs(1);
  }
}

uint64_t Min(uint64_t a, uint64_t b) { return a < b ? a : b; }

// Why the segment `file` cannot be used, into message; false when it can.
// The header is read only within `size` bytes.
bool Refuse(char* message, size_t cap, const char* file, const char* why) {
  if (cap > 0) snprintf(message, cap, "execmem: %s: %s", file, why);
  return true;
}

bool Unusable(const Segment* seg, uint64_t size, const char* file, char* message, size_t cap) {
  char why[160];
  const Header& h = seg->header;
  if (size < sizeof(uint64_t) * 2) {
    snprintf(why, sizeof why, "size %llu bytes, expected %llu (not an execmem pool)",
             static_cast<unsigned long long>(size), static_cast<unsigned long long>(kSegmentBytes));
    return Refuse(message, cap, file, why);
  }
  if (h.magic != kMagic) return Refuse(message, cap, file, "not an execmem pool (bad magic)");
  if (h.version != kVersion) {
    snprintf(why, sizeof why, "made by version %u of execmem's pool format, this is version %u",
             h.version, kVersion);
    return Refuse(message, cap, file, why);
  }
  if (size != kSegmentBytes || h.segment_bytes != kSegmentBytes || h.slots != kSlots ||
      h.slot_bytes != sizeof(Slot)) {
    snprintf(why, sizeof why, "size %llu bytes (header says %llu, %u slots), expected %llu",
             static_cast<unsigned long long>(size),
             static_cast<unsigned long long>(h.segment_bytes), h.slots,
             static_cast<unsigned long long>(kSegmentBytes));
    return Refuse(message, cap, file, why);
  }
  if (h.capacity == 0 || h.capacity > kMaxCapacity) {
    snprintf(why, sizeof why, "corrupt: capacity %llu",
             static_cast<unsigned long long>(h.capacity));
    return Refuse(message, cap, file, why);
  }
  const uint64_t ns = os::PidNamespaceId();
  if (h.pid_namespace != 0 && ns != 0 && h.pid_namespace != ns) {
    return Refuse(message, cap, file,
                  "its members run in another pid namespace (their pids cannot be checked)");
  }
  return false;
}

bool ForeignOwner(const os::ShmStat& st, const char* file, char* message, size_t cap) {
  char why[160];
  const uint32_t me = os::EffectiveUid();
  const bool group_shared = (st.mode & 0060) == 0060 && os::InGroup(st.gid);
  if (st.uid != me && !group_shared) {
    snprintf(why, sizeof why, "owned by uid %u (mode 0%o), not by this user (uid %u)", st.uid,
             st.mode, me);
    return Refuse(message, cap, file, why);
  }
  if ((st.mode & 0006) != 0) {
    snprintf(why, sizeof why, "mode 0%o lets every user change it", st.mode);
    return Refuse(message, cap, file, why);
  }
  return false;
}

// What the member slots hold together; each slot's figures clamped so that a
// corrupt one cannot overflow the sum.
uint64_t SumOfSlots(const Segment* seg) {
  uint64_t sum = 0;
  for (const Slot& s : seg->slot) {
    if (s.state.load(kRelaxed) != kMember) continue;
    sum +=
        Min(s.reserved.load(kRelaxed), kMaxCapacity) + Min(s.granted.load(kRelaxed), kMaxCapacity);
  }
  return sum;
}

void CopyView(const Slot& s, uint32_t index, MemberView* v) {
  v->slot = index;
  v->pid = s.pid.load(kRelaxed);
  v->start_ticks = s.start_ticks.load(kRelaxed);
  v->reserved = s.reserved.load(kRelaxed);
  v->granted = s.granted.load(kRelaxed);
  v->used = s.used.load(kRelaxed);
  v->footprint = s.footprint.load(kRelaxed);
  v->asked = s.asked.load(kRelaxed);
  v->answered = s.answered.load(kRelaxed);
  for (size_t i = 0; i < kProgramBytes; ++i) {
    const char c = s.program[i];
    v->program[i] = c >= 0x20 && c < 0x7f ? c : (c == '\0' ? '\0' : '?');
  }
  v->program[kProgramBytes] = '\0';
}

}  // namespace

bool SegmentName(const char* pool, char* out, size_t cap) {
  if (pool == nullptr || pool[0] == '\0' || strlen(pool) > os::kMaxShmName - 10) return false;
  const int n = snprintf(out, cap, "execmem.%s", pool);
  return n > 0 && static_cast<size_t>(n) < cap && os::ValidShmName(out);
}

// ---- the lock ------------------------------------------------------------------
// TryLock (the header): one CAS when the lock is free, tried when nothing
// was deferred (fast_slot_ set: the ledger's path); LockSlow otherwise (out
// of line): waits for
// a live holder, takes over a dead one's lock and then recomputes the
// ledger's total from the slots (each member writes only its own slot's
// words, whole 64-bit stores, so the slots are right whatever the dead
// holder was doing, and only the total can be off), and applies deferred
// gives back.
bool Member::Lock() const {
  return (fast_slot_.load(kRelaxed) != nullptr && TryLock()) || LockSlow();
}

__attribute__((noinline)) bool Member::LockSlow() const {
  Header& h = seg_->header;
  const Locked r = Acquire(h.lock, me_);
  if (r == Locked::kTimedOut) return false;
  if (r == Locked::kTakenOver) {
    h.total.store(SumOfSlots(seg_), kRelaxed);
    h.repairs.fetch_add(1, kRelaxed);
  }
  ApplyDeferred();
  return true;
}

// Under the lock: gives back what could not take the lock before.
// fast_slot_ is set again before the amounts are taken, so that a give-back
// deferred meanwhile clears it again (seq_cst: the slow paths only).
void Member::ApplyDeferred() const {
  Slot* s = slot_.load(kRelaxed);
  if (s == nullptr || fast_slot_.load(kRelaxed) == s) return;
  fast_slot_.store(s, std::memory_order_seq_cst);
  const uint64_t r = deferred_reserved_.exchange(0, std::memory_order_seq_cst);
  const uint64_t g = deferred_granted_.exchange(0, std::memory_order_seq_cst);
  if ((r | g) == 0) return;
  Header& h = seg_->header;
  const uint64_t rr = Min(r, s->reserved.load(kRelaxed));
  const uint64_t gg = Min(g, s->granted.load(kRelaxed));
  s->reserved.store(s->reserved.load(kRelaxed) - rr, kRelaxed);
  s->granted.store(s->granted.load(kRelaxed) - gg, kRelaxed);
  h.total.store(h.total.load(kRelaxed) - Min(rr + gg, h.total.load(kRelaxed)), kRelaxed);
  h.released.store(h.released.load(kRelaxed) + 1, kRelaxed);
  // Rare (a lock once held past kLockWaitMs): the wake is made with the lock
  // held, which a futex wake allows (it never blocks).
  if (h.waiters.load(kRelaxed) != 0) os::FutexWakeAll(&h.released);
}

// Holds the segment's lock for a scope (the slow paths: join, leave, reclaim).
class Member::Guard {
 public:
  explicit Guard(const Member* m) : m_(m), locked_(m->Lock()) {}
  ~Guard() {
    if (locked_) m_->Unlock(wake_);
  }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;
  bool locked() const { return locked_; }

  // Capacity came back (under the lock): bumps `released` and, when an asker
  // waits, wakes it once the lock is dropped. No read-modify-write: the lock
  // orders both words. An asker increments `waiters` before its retry takes
  // the lock and reads `released` before that too, so either its retry comes
  // after this critical section (and sees the capacity) or this section
  // comes after its retry and sees it waiting (and wakes it; the futex wait
  // returns at once if `released` already moved).
  void NoteReleased() {
    Header& h = m_->seg_->header;
    h.released.store(h.released.load(kRelaxed) + 1, kRelaxed);
    wake_ = wake_ || h.waiters.load(kRelaxed) != 0;
  }

 private:
  const Member* m_;
  bool locked_ = false;
  bool wake_ = false;
};

// ---- joining -------------------------------------------------------------------

JoinStatus Member::Join(const JoinOptions& options, char* message, size_t cap) {
  if (cap > 0) message[0] = '\0';
  char name[os::kMaxShmName + 1];
  char file[os::kMaxShmName + 16];
  if (!SegmentName(options.pool, name, sizeof name)) {
    if (cap > 0) {
      snprintf(message, cap,
               "execmem: shared pool name \"%.64s\" refused: 1 to 190 characters of "
               "A-Z a-z 0-9 . _ - expected",
               options.pool == nullptr ? "" : options.pool);
    }
    return JoinStatus::kRefused;
  }
  snprintf(file, sizeof file, "/dev/shm/%s", name);
  if (joined()) {
    if (cap > 0) snprintf(message, cap, "execmem: %s: this process is already a member", file);
    return JoinStatus::kRefused;
  }
  uint64_t want = options.capacity != 0 ? options.capacity : options.default_capacity;
  if (want == 0 || want > kMaxCapacity) want = kMaxCapacity;
  const uint32_t mode = (options.mode & 0660) | 0600;

  JoinStatus status = JoinStatus::kJoined;
  os::ShmMapping map;
  for (int attempt = 0;; ++attempt) {
    os::ShmStat st;
    int err = os::ShmOpen(name, true, 1, 64 * kSegmentBytes, &map, &st);
    if (err == 0) {
      if (ForeignOwner(st, file, message, cap) ||
          Unusable(static_cast<Segment*>(map.base), st.size, file, message, cap)) {
        os::ShmUnmap(&map);
        return JoinStatus::kRefused;
      }
      break;
    }
    if (err == EINVAL) {  // the name was checked: the size is wrong
      char why[96];
      snprintf(why, sizeof why, "size %llu bytes, expected %llu",
               static_cast<unsigned long long>(st.size),
               static_cast<unsigned long long>(kSegmentBytes));
      Refuse(message, cap, file, why);
      return JoinStatus::kRefused;
    }
    if (err != ENOENT || attempt >= 3) {
      char why[96];
      snprintf(why, sizeof why, "cannot open it: %s", strerror(err));
      Refuse(message, cap, file, why);
      return JoinStatus::kRefused;
    }
    // None yet: make one under a private name, fill it, publish it whole.
    err = os::ShmCreatePrivate(name, mode, kSegmentBytes, &map);
    if (err != 0) {
      char why[96];
      snprintf(why, sizeof why, "cannot create it: %s", strerror(err));
      Refuse(message, cap, file, why);
      return JoinStatus::kRefused;
    }
    Segment* seg = static_cast<Segment*>(map.base);  // zero-filled
    Header& h = seg->header;
    h.magic = kMagic;
    h.version = kVersion;
    h.slots = kSlots;
    h.segment_bytes = kSegmentBytes;
    h.slot_bytes = sizeof(Slot);
    h.capacity = want;
    h.pid_namespace = os::PidNamespaceId();
    err = os::ShmPublish(name);  // the lock word is 0: free
    if (err == 0) {
      status = JoinStatus::kCreated;
      break;
    }
    os::ShmUnmap(&map);
    if (err != EEXIST) {
      char why[96];
      snprintf(why, sizeof why, "cannot create it: %s", strerror(err));
      Refuse(message, cap, file, why);
      return JoinStatus::kRefused;
    }
    // Another process published first: open that one.
  }

  seg_ = static_cast<Segment*>(map.base);
  map_bytes_ = map.size;
  snprintf(name_, sizeof name_, "%s", options.pool);  // checked by SegmentName: fits
  capacity_ = seg_->header.capacity;                  // checked by Unusable; never re-read
  me_ = LockName(os::ProcessId(), OwnStartTicks());
  if (!ClaimSlot()) {
    ReclaimDead();
    if (!ClaimSlot()) {
      char why[96];
      snprintf(why, sizeof why, "full (%u members) or its lock is held by a stopped member",
               kSlots);
      Refuse(message, cap, file, why);
      os::ShmUnmap(&map);
      seg_ = nullptr;
      return JoinStatus::kRefused;
    }
  }
  if (status == JoinStatus::kJoined && options.capacity != 0 && options.capacity != capacity_ &&
      cap > 0) {
    snprintf(message, cap,
             "execmem: %s: the pool's capacity is %llu bytes, fixed by its creator; "
             "the %llu asked for is ignored",
             file, static_cast<unsigned long long>(capacity_),
             static_cast<unsigned long long>(options.capacity));
  }
  return status;
}

bool Member::ClaimSlot() {
  const int pid = os::ProcessId();
  const uint64_t ticks = OwnStartTicks();
  Guard g(this);
  if (!g.locked()) return false;
  for (Slot& s : seg_->slot) {
    if (s.state.load(kRelaxed) != kFree) continue;
    s.pid.store(pid, kRelaxed);
    s.start_ticks.store(ticks, kRelaxed);
    s.reserved.store(0, kRelaxed);
    s.granted.store(0, kRelaxed);
    s.used.store(0, kRelaxed);
    s.footprint.store(0, kRelaxed);
    s.asked.store(0, kRelaxed);
    s.answered.store(0, kRelaxed);
    s.wanted.store(0, kRelaxed);
    const char* prog = os::ProgramName();
    size_t i = 0;
    for (; i + 1 < kProgramBytes && prog[i] != '\0'; ++i) s.program[i] = prog[i];
    for (; i < kProgramBytes; ++i) s.program[i] = '\0';
    s.state.store(kMember, std::memory_order_release);  // readers: the slot is filled
    last_request_ = s.request.load(kRelaxed);
    seg_->header.joins.fetch_add(1, kRelaxed);
    slot_.store(&s, std::memory_order_release);
    fast_slot_.store(&s, std::memory_order_release);
    return true;
  }
  return false;
}

void Member::Leave() {
  Slot* s = slot_.load(std::memory_order_acquire);
  if (seg_ == nullptr) return;
  if (s != nullptr) {
    Guard g(this);
    if (g.locked()) {
      Header& h = seg_->header;
      const uint64_t held = s->reserved.load(kRelaxed) + s->granted.load(kRelaxed);
      h.total.store(h.total.load(kRelaxed) - Min(held, h.total.load(kRelaxed)), kRelaxed);
      s->reserved.store(0, kRelaxed);
      s->granted.store(0, kRelaxed);
      s->pid.store(0, kRelaxed);
      s->state.store(kFree, std::memory_order_release);
      g.NoteReleased();
    }
    // Not locked: the slot stays, and is reclaimed as a dead member's once
    // this process exits.
    fast_slot_.store(nullptr, std::memory_order_release);
    slot_.store(nullptr, std::memory_order_release);
  }
  os::ShmMapping map{seg_, map_bytes_};
  os::ShmUnmap(&map);
  seg_ = nullptr;
}

void Member::AfterForkInChild() {
  if (seg_ == nullptr) return;
  fast_slot_.store(nullptr, std::memory_order_release);
  slot_.store(nullptr, std::memory_order_release);  // the parent's, still
  me_ = LockName(os::ProcessId(), OwnStartTicks());
  deferred_reserved_.store(0, kRelaxed);
  deferred_granted_.store(0, kRelaxed);
  if (!ClaimSlot()) {
    ReclaimDead();
    ClaimSlot();  // none: this child takes nothing from the pool (joined() false)
  }
}

// ---- the ledger ----------------------------------------------------------------

// The ledger's slow paths (the fast ones are inline in the header): the
// lock was held, or gives back wait to be applied (`locked`: the fast path's
// CAS took the lock).
template <std::atomic<uint64_t> Slot::*kField>
bool Member::TakeSlow(uint64_t bytes) {
  if (slot_.load(kRelaxed) == nullptr) return false;
  Header& h = seg_->header;
  if (!LockSlow()) {
    h.refusals.fetch_add(1, kRelaxed);
    return false;
  }
  Slot* s = slot_.load(kRelaxed);
  const uint64_t total = h.total.load(kRelaxed);
  if (s == nullptr || total > capacity_ || bytes > capacity_ - total) {
    h.refusals.fetch_add(1, kRelaxed);
    Unlock(false);
    return false;
  }
  h.total.store(total + bytes, kRelaxed);
  if (total + bytes > h.peak.load(kRelaxed)) h.peak.store(total + bytes, kRelaxed);
  (s->*kField).store((s->*kField).load(kRelaxed) + bytes, kRelaxed);
  Unlock(false);
  return true;
}

template <std::atomic<uint64_t> Slot::*kField>
void Member::GiveSlow(uint64_t bytes) {
  if (slot_.load(kRelaxed) == nullptr) return;
  if (!LockSlow()) {
    (kField == &Slot::reserved ? deferred_reserved_ : deferred_granted_)
        .fetch_add(bytes, std::memory_order_seq_cst);
    fast_slot_.store(nullptr, std::memory_order_seq_cst);  // the next lock applies it
    return;
  }
  Slot* s = slot_.load(kRelaxed);
  Header& h = seg_->header;
  const uint64_t held = s == nullptr ? 0 : (s->*kField).load(kRelaxed);
  const uint64_t b = Min(bytes, held);
  if (s != nullptr) (s->*kField).store(held - b, kRelaxed);
  const uint64_t total = h.total.load(kRelaxed);
  h.total.store(total - Min(b, total), kRelaxed);
  const bool wake = h.waiters.load(kRelaxed) != 0;
  if (wake) h.released.store(h.released.load(kRelaxed) + 1, kRelaxed);
  Unlock(wake);
}

template bool Member::TakeSlow<&Slot::reserved>(uint64_t);
template bool Member::TakeSlow<&Slot::granted>(uint64_t);
template void Member::GiveSlow<&Slot::reserved>(uint64_t);
template void Member::GiveSlow<&Slot::granted>(uint64_t);

template <std::atomic<uint64_t> Slot::*kFrom, std::atomic<uint64_t> Slot::*kTo>
void Member::Move(uint64_t bytes) {
  Slot* s = slot_.load(kRelaxed);
  if (s == nullptr) return;
  Guard g(this);
  if (!g.locked()) return;  // figures only: the total is unchanged
  const uint64_t b = Min(bytes, (s->*kFrom).load(kRelaxed));
  (s->*kFrom).store((s->*kFrom).load(kRelaxed) - b, kRelaxed);
  (s->*kTo).store((s->*kTo).load(kRelaxed) + b, kRelaxed);
}
template void Member::Move<&Slot::reserved, &Slot::granted>(uint64_t);
template void Member::Move<&Slot::granted, &Slot::reserved>(uint64_t);

void Member::Publish(uint64_t used, uint64_t footprint) {
  Slot* s = slot_.load(kRelaxed);
  if (s == nullptr) return;
  s->used.store(used, kRelaxed);
  s->footprint.store(footprint, kRelaxed);
}

uint64_t Member::Reserved() const {
  Slot* s = slot_.load(kRelaxed);
  return s == nullptr ? 0 : s->reserved.load(kRelaxed);
}

uint64_t Member::Granted() const {
  Slot* s = slot_.load(kRelaxed);
  return s == nullptr ? 0 : s->granted.load(kRelaxed);
}

// ---- the slow path: the dead, the asked, the waiting -------------------------------

uint64_t Member::ReclaimDead() {
  if (seg_ == nullptr) return 0;
  Slot* mine = slot_.load(kRelaxed);
  uint64_t reclaimed = 0;
  for (Slot& s : seg_->slot) {
    if (&s == mine || s.state.load(std::memory_order_acquire) != kMember) continue;
    const int32_t pid = s.pid.load(kRelaxed);
    const uint64_t ticks = s.start_ticks.load(kRelaxed);
    // Read /proc without the lock; the slot is re-checked under it, so a
    // member that left and a new one that took the slot meanwhile is kept.
    if (pid > 0 && os::ProcessAlive(pid, ticks)) continue;
    Guard g(this);
    if (!g.locked()) break;
    if (s.state.load(kRelaxed) != kMember || s.pid.load(kRelaxed) != pid ||
        s.start_ticks.load(kRelaxed) != ticks) {
      continue;
    }
    Header& h = seg_->header;
    const uint64_t held =
        Min(s.reserved.load(kRelaxed), kMaxCapacity) + Min(s.granted.load(kRelaxed), kMaxCapacity);
    s.reserved.store(0, kRelaxed);
    s.granted.store(0, kRelaxed);
    s.used.store(0, kRelaxed);
    s.footprint.store(0, kRelaxed);
    s.pid.store(0, kRelaxed);
    s.state.store(kFree, std::memory_order_release);
    // Recomputed rather than decremented: the slow path can afford the walk,
    // and a total a corrupt slot or a lost give-back put off is mended.
    h.total.store(SumOfSlots(seg_), kRelaxed);
    h.reclaimed_members.fetch_add(1, kRelaxed);
    h.reclaimed_bytes.fetch_add(held, kRelaxed);
    reclaimed += held;
    g.NoteReleased();
  }
  return reclaimed;
}

void Member::Ask(Slot* s, uint64_t bytes) const {
  uint64_t cur = s->wanted.load(kRelaxed);
  while (cur < bytes && !s->wanted.compare_exchange_weak(cur, bytes, kRelaxed)) {
  }
  s->asked.fetch_add(1, kRelaxed);
  s->request.fetch_add(1, std::memory_order_seq_cst);
  os::FutexWakeAll(&s->request);
}

uint32_t Member::LargestHolders(MemberView* out, uint32_t n) const {
  if (seg_ == nullptr) return 0;
  uint32_t count = 0;
  for (uint32_t i = 0; i < kSlots; ++i) {
    const Slot& s = seg_->slot[i];
    if (s.state.load(std::memory_order_acquire) != kMember) continue;
    MemberView v;
    CopyView(s, i, &v);
    // Insertion into out[0..count), largest grant first (then reservation).
    uint32_t at = count < n ? count : n;
    while (at > 0 && (out[at - 1].granted < v.granted ||
                      (out[at - 1].granted == v.granted && out[at - 1].reserved < v.reserved))) {
      if (at < n) out[at] = out[at - 1];
      --at;
    }
    if (at < n) {
      out[at] = v;
      if (count < n) ++count;
    }
  }
  return count;
}

bool Member::GrantOrAsk(uint64_t bytes, uint64_t wait_ms) {
  if (!joined()) return false;
  if (Grant(bytes)) return true;
  Header& h = seg_->header;
  const uint64_t start = os::NowMs();
  const Slot* mine = slot_.load(kRelaxed);
  bool asked = false;
  for (;;) {
    if (ReclaimDead() != 0 && Grant(bytes)) return true;
    const uint64_t now = os::NowMs();
    if (now - start >= wait_ms) return false;
    h.waiters.fetch_add(1, std::memory_order_seq_cst);
    const uint32_t seen = h.released.load(std::memory_order_seq_cst);
    if (Grant(bytes)) {
      h.waiters.fetch_sub(1, kRelaxed);
      return true;
    }
    if (!asked) {
      // Members holding grants above their reservations, largest first,
      // until their grants cover the request.
      MemberView top[8];
      const uint32_t n = LargestHolders(top, 8);
      uint64_t covered = 0;
      for (uint32_t i = 0; i < n && covered < bytes; ++i) {
        Slot* s = &seg_->slot[top[i].slot % kSlots];
        if (s == mine || top[i].granted == 0) continue;
        Ask(s, bytes - covered);
        covered += top[i].granted;
      }
      asked = true;
    }
    os::FutexWait(&h.released, seen, Min(kReclaimEveryMs, wait_ms - (now - start)));
    h.waiters.fetch_sub(1, kRelaxed);
    if (Grant(bytes)) return true;
    asked = false;  // still short after capacity came back: ask again
  }
}

uint64_t Member::WaitForRequest(uint64_t timeout_ms) {
  Slot* s = slot_.load(kRelaxed);
  if (s == nullptr) return 0;
  uint32_t now = s->request.load(std::memory_order_seq_cst);
  if (now == last_request_) {
    os::FutexWait(&s->request, now, timeout_ms);
    now = s->request.load(std::memory_order_seq_cst);
    if (now == last_request_) return 0;
  }
  last_request_ = now;
  const uint64_t wanted = s->wanted.exchange(0, kRelaxed);
  return wanted == 0 ? 1 : wanted;
}

void Member::Answered() {
  Slot* s = slot_.load(kRelaxed);
  if (s != nullptr) s->answered.fetch_add(1, kRelaxed);
}

bool Member::Read(Figures* out) const {
  const Slot* mine = slot_.load(std::memory_order_acquire);
  if (mine == nullptr) return false;
  const Header& h = seg_->header;
  *out = Figures{};
  out->capacity = capacity_;
  out->peak = h.peak.load(kRelaxed);
  out->refusals = h.refusals.load(kRelaxed);
  out->reclaimed_members = h.reclaimed_members.load(kRelaxed);
  out->reclaimed_bytes = h.reclaimed_bytes.load(kRelaxed);
  for (const Slot& s : seg_->slot) {
    if (s.state.load(std::memory_order_acquire) != kMember) continue;
    ++out->members;
    out->reserved += Min(s.reserved.load(kRelaxed), kMaxCapacity);
    out->granted += Min(s.granted.load(kRelaxed), kMaxCapacity);
  }
  // A total seen between two members' updates may pass the peak recorded.
  out->peak = std::max(out->peak, Min(out->reserved + out->granted, kMaxCapacity));
  out->own_reserved = mine->reserved.load(kRelaxed);
  out->own_granted = mine->granted.load(kRelaxed);
  out->own_used = mine->used.load(kRelaxed);
  out->own_asked = mine->asked.load(kRelaxed);
  out->own_answered = mine->answered.load(kRelaxed);
  snprintf(out->name, sizeof out->name, "%s", name_);
  return true;
}

bool Member::IsValid() const {
  if (seg_ == nullptr) return true;
  Guard g(this);
  if (!g.locked()) return false;
  const uint64_t sum = SumOfSlots(seg_);
  const uint64_t total = seg_->header.total.load(kRelaxed);
  return sum == total && total <= capacity_;
}

// ---- reading a pool ------------------------------------------------------------------

int ReadPool(const char* pool, PoolView* out, char* message, size_t cap) {
  char name[os::kMaxShmName + 1];
  char file[os::kMaxShmName + 16];
  if (!SegmentName(pool, name, sizeof name)) {
    if (cap > 0) snprintf(message, cap, "execmem: shared pool name \"%.64s\" refused", pool);
    return -1;
  }
  snprintf(file, sizeof file, "/dev/shm/%s", name);
  os::ShmMapping map;
  os::ShmStat st;
  const int err = os::ShmOpen(name, false, 1, 64 * kSegmentBytes, &map, &st);
  if (err != 0) {
    char why[96];
    snprintf(why, sizeof why, "cannot open it: %s", strerror(err));
    Refuse(message, cap, file, why);
    return -1;
  }
  const Segment* seg = static_cast<const Segment*>(map.base);
  if (Unusable(seg, st.size, file, message, cap)) {
    os::ShmUnmap(&map);
    return -1;
  }
  const Header& h = seg->header;
  out->capacity = h.capacity;
  out->total = h.total.load(kRelaxed);
  out->joins = h.joins.load(kRelaxed);
  out->refusals = h.refusals.load(kRelaxed);
  out->reclaimed_members = h.reclaimed_members.load(kRelaxed);
  out->reclaimed_bytes = h.reclaimed_bytes.load(kRelaxed);
  out->repairs = h.repairs.load(kRelaxed);
  out->reserved = out->granted = 0;
  out->members = 0;
  for (uint32_t i = 0; i < kSlots; ++i) {
    const Slot& s = seg->slot[i];
    if (s.state.load(std::memory_order_acquire) != kMember) continue;
    MemberView& v = out->member[out->members++];
    CopyView(s, i, &v);
    out->reserved += Min(v.reserved, kMaxCapacity);
    out->granted += Min(v.granted, kMaxCapacity);
  }
  os::ShmUnmap(&map);
  return 0;
}

}  // namespace execmem::budget::shared
