// The shared pool's ledger: one budget for the executors of several
// processes (issue 18), in a POSIX shared-memory object /dev/shm/execmem.NAME.
// Design, crash-safety argument and memory-ordering notes: docs/shared-pool.md.
//
//  * The segment holds a header (magic, version, sizes, the capacity fixed by
//    its creator, the ledger's total, counters) and kSlots member slots (pid
//    and start time, reserved, granted, used, footprint, requests asked and
//    answered, a futex word for requests). Counters only, never a pointer:
//    the segment is mapped at a different address in every member.
//  * Invariant, under the segment's lock: total == sum over member slots of
//    (reserved + granted) <= capacity.
//  * The lock is one 64-bit word naming its holder (pid and start time), taken
//    by a compare-and-swap and dropped by a store: a member that dies holding
//    it leaves its name there, and a waiter that finds that process gone takes
//    the lock over (one CAS from the dead name) and recomputes `total` from
//    the slots (each of whose words is written whole) before going on. A member writes only
//    its own slot, and the slot of a dead member it reclaims, so the repair
//    is right whichever instruction the dead member stopped at. No call that
//    can block (a /proc read, a futex wait) is made with the lock held.
//  * A member is identified by pid and start time (/proc/PID/stat field 22):
//    a dead member's slot is reclaimed (its reservations and grants go back
//    to the pool) by whichever member next needs room, so a reused pid is
//    never taken for it; a stopped member (SIGSTOP) is alive and keeps what
//    it holds.
//  * Nothing read from the segment indexes memory without a bound: slots are
//    walked over [0, kSlots) (this build's constant, checked against the
//    header at join), the capacity is copied at join and never re-read.
//  * Verdicts, not calls up: a refused grant is answered by AskOthers (reclaim
//    the dead, ask the members holding grants above their reservations,
//    largest grant first, wait for capacity to come back, retry); the member
//    asked learns it from WaitForRequest on its background thread and acts
//    (trim, give grants back, spill) in the layer above.
#ifndef EXECMEM_BUDGET_SHARED_LEDGER_H_
#define EXECMEM_BUDGET_SHARED_LEDGER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "budget/budget.h"
#include "platform/os.h"

namespace execmem::budget::shared {

inline constexpr uint64_t kMagic = 0x6c6f6f706d656d78;  // "xmempool", little-endian
inline constexpr uint32_t kVersion = 1;
// Members of one pool at most; a process beyond it runs with a pool of its own.
inline constexpr uint32_t kSlots = 256;
inline constexpr size_t kProgramBytes = 16;  // as /proc/PID/comm
// The longest a ledger call waits for the segment's lock (a holder that is
// stopped): then the call is refused (Reserve, Grant) or deferred (gives back).
inline constexpr uint64_t kLockWaitMs = 1000;
// How often a waiting asker looks for dead members (so a killed member's
// capacity is back within a second).
inline constexpr uint64_t kReclaimEveryMs = 100;

enum SlotState : uint32_t { kFree = 0, kMember = 1 };

// One member. reserved and granted change under the lock only; used and
// footprint are published by the member (relaxed: figures); the rest are
// counters and the request futex.
struct alignas(64) Slot {
  std::atomic<uint32_t> state;
  std::atomic<int32_t> pid;
  std::atomic<uint64_t> start_ticks;
  std::atomic<uint64_t> reserved;  // executors' initial + overhead
  std::atomic<uint64_t> granted;   // growth above the reservations
  std::atomic<uint64_t> used;
  std::atomic<uint64_t> footprint;
  std::atomic<uint64_t> asked;     // requests made to this member
  std::atomic<uint64_t> answered;  // requests it answered
  std::atomic<uint64_t> wanted;    // bytes the open requests want back
  std::atomic<uint32_t> request;   // futex word: bumped by every request
  char program[kProgramBytes];     // written at join, under the lock
};

struct Header {
  uint64_t magic;
  uint32_t version;
  uint32_t slots;
  uint64_t segment_bytes;
  uint64_t slot_bytes;
  uint64_t capacity;       // fixed by the creator
  uint64_t pid_namespace;  // members' pids are of this namespace
  // 0: free; else the holder: start ticks (low 32 bits) << 32 | pid.
  std::atomic<uint64_t> lock;
  std::atomic<uint64_t> total;     // reserved + granted of all members
  std::atomic<uint32_t> released;  // futex word: bumped when capacity comes back
  std::atomic<uint32_t> waiters;   // askers waiting on `released`
  std::atomic<uint64_t> joins;
  std::atomic<uint64_t> refusals;
  std::atomic<uint64_t> reclaimed_members;
  std::atomic<uint64_t> reclaimed_bytes;
  std::atomic<uint64_t> repairs;  // locks taken over from a dead holder
  // The highest total since the pool was made (under the lock; reports and
  // execmem-advise). In what was the header's padding: the segment's size
  // and layout are unchanged, a segment made before it reads 0 here.
  std::atomic<uint64_t> peak;
};
static_assert(sizeof(Header) <= 128, "the header must stay within the segment's first 128 bytes");

struct alignas(64) Segment {
  Header header;
  Slot slot[kSlots];
};
inline constexpr uint64_t kSegmentBytes = sizeof(Segment);

// "execmem.NAME" for a pool NAME; false if NAME is not 1..190 bytes of
// [A-Za-z0-9._-].
bool SegmentName(const char* pool, char* out, size_t cap);

enum class JoinStatus : uint8_t {
  kCreated,  // this process made the pool
  kJoined,   // it joined an existing one (message: a note, e.g. its capacity)
  kRefused,  // message: one line naming the file and why
};

struct JoinOptions {
  const char* pool = nullptr;  // NAME
  uint64_t capacity = 0;       // asked for; 0: default_capacity
  uint64_t default_capacity = 0;
  uint32_t mode = 0600;  // of a new segment; 0600 or 0660
};

// What one member of a pool looks like (execmem-top, reports).
struct MemberView {
  uint32_t slot;
  int32_t pid;
  uint64_t start_ticks;
  uint64_t reserved, granted, used, footprint, asked, answered;
  char program[kProgramBytes + 1];
};
struct PoolView {
  uint64_t capacity, total, reserved, granted;
  uint64_t joins, refusals, reclaimed_members, reclaimed_bytes, repairs;
  uint32_t members;
  MemberView member[kSlots];
};
// Reads pool NAME without joining it (read-only). 0, or -1 with one line in
// `message`.
int ReadPool(const char* pool, PoolView* out, char* message, size_t cap);

// A member's figures of its pool for its reports (budget.h ReadSharedPool).
using Figures = SharedPoolFigures;
inline constexpr size_t kPoolNameBytes = sizeof(Figures::name);  // a NAME (1..190 bytes), NUL

// A member's view of one pool. Every method is thread-safe.
class Member {
 public:
  constexpr Member() = default;
  Member(const Member&) = delete;
  Member& operator=(const Member&) = delete;
  ~Member() { Leave(); }

  // Creates the pool or joins it. `message` gets one line (NUL-terminated)
  // when refused, or a note when joined on other terms (another capacity).
  JoinStatus Join(const JoinOptions& options, char* message, size_t cap);
  // Gives back everything this member holds and frees its slot.
  void Leave();
  bool joined() const { return slot_.load(std::memory_order_acquire) != nullptr; }
  uint64_t capacity() const { return capacity_; }
  // The pool's reserved + granted (a relaxed figure, for reports).
  uint64_t Total() const {
    return seg_ == nullptr ? 0 : seg_->header.total.load(std::memory_order_relaxed);
  }
  // This member's slot index (kSlots when not joined), and the slots holding
  // a member (a relaxed count): to spread periodic work over the members.
  uint32_t SlotIndex() const {
    const Slot* s = slot_.load(std::memory_order_relaxed);
    return s == nullptr ? kSlots : static_cast<uint32_t>(s - seg_->slot);
  }
  uint32_t Members() const {
    uint32_t n = 0;
    if (seg_ != nullptr) {
      for (const Slot& s : seg_->slot) n += s.state.load(std::memory_order_relaxed) == kMember;
    }
    return n;
  }
  // The pool's NAME ("" before the first join).
  const char* name() const { return name_; }
  // The pool's figures and this member's; false when not a member.
  bool Read(Figures* out) const;

  // The ledger. Reserve and Grant succeed only if the pool's total stays
  // within its capacity; gives back are bounded by what this member holds.
  // Inline (below): what an executor pays per quantum borrowed and given back.
  bool Reserve(uint64_t bytes) { return Take<&Slot::reserved>(bytes); }
  void Unreserve(uint64_t bytes) { Give<&Slot::reserved>(bytes); }
  bool Grant(uint64_t bytes) { return Take<&Slot::granted>(bytes); }
  void Ungrant(uint64_t bytes) { Give<&Slot::granted>(bytes); }
  void ReservedToGranted(uint64_t bytes) { Move<&Slot::reserved, &Slot::granted>(bytes); }
  void GrantedToReserved(uint64_t bytes) { Move<&Slot::granted, &Slot::reserved>(bytes); }
  // This member's figures for the others (relaxed stores, no lock).
  void Publish(uint64_t used, uint64_t footprint);
  uint64_t Reserved() const;
  uint64_t Granted() const;

  // After a refused Grant (and the member's own trim and spill): reclaims
  // dead members, asks the members holding grants (largest first) to give
  // back, and waits at most wait_ms for capacity, retrying. True: granted.
  bool GrantOrAsk(uint64_t bytes, uint64_t wait_ms);
  // Reclaims the slots of dead members; returns the bytes given back.
  uint64_t ReclaimDead();
  // The members holding most, largest grant first, into out[0..n); returns
  // how many (for an out-of-memory report).
  uint32_t LargestHolders(MemberView* out, uint32_t n) const;

  // The member's side of a request: waits at most timeout_ms for one;
  // returns the bytes wanted (>= 1), or 0 when none came. After acting on
  // it (trim, Ungrant, spill), the member calls Answered.
  uint64_t WaitForRequest(uint64_t timeout_ms);
  void Answered();

  // In a forked child: takes a slot of its own (what the parent holds stays
  // the parent's; this member starts with nothing). Call once in the child.
  void AfterForkInChild();

  // Under the lock: total == sum of members' reserved + granted <= capacity.
  bool IsValid() const;

 private:
  class Guard;
  // The ledger's path (docs/shared-pool.md, "Speed"): with fast_slot_ set
  // (a member, nothing deferred) and the lock free (one CAS: TryLock), Take
  // and Give are straight-line code, inline; anything else — a held lock, a
  // dead holder's taken over, deferred gives back — is LockSlow's, out of line.
  template <std::atomic<uint64_t> Slot::*kField>
  __attribute__((always_inline)) bool Take(uint64_t bytes);
  template <std::atomic<uint64_t> Slot::*kField>
  __attribute__((always_inline)) void Give(uint64_t bytes);
  template <std::atomic<uint64_t> Slot::*kField>
  bool TakeSlow(uint64_t bytes);
  // Moves up to `bytes` of this member's figures from one field to the other
  // (the pool's total is unchanged).
  template <std::atomic<uint64_t> Slot::*kFrom, std::atomic<uint64_t> Slot::*kTo>
  void Move(uint64_t bytes);
  template <std::atomic<uint64_t> Slot::*kField>
  void GiveSlow(uint64_t bytes);
  // One CAS of the segment's lock word from free to this process's name.
  bool TryLock() const {
    uint64_t free_word = 0;
    return __builtin_expect(
        seg_->header.lock.compare_exchange_strong(free_word, me_, std::memory_order_acquire,
                                                  std::memory_order_relaxed),
        1);
  }
  bool Lock() const;
  bool LockSlow() const;
  void Unlock(bool wake) const { Unlock(seg_, wake); }
  static void Unlock(Segment* seg, bool wake) {
    seg->header.lock.store(0, std::memory_order_release);
    if (wake) os::FutexWakeAll(&seg->header.released);
  }
  void ApplyDeferred() const;
  bool ClaimSlot();
  void Ask(Slot* s, uint64_t bytes) const;

  Segment* seg_ = nullptr;
  size_t map_bytes_ = 0;
  std::atomic<Slot*> slot_{nullptr};
  uint64_t capacity_ = 0;
  char name_[kPoolNameBytes] = {};
  uint64_t me_ = 0;  // this process's name in the lock word
  uint32_t last_request_ = 0;
  // Gives back that could not take the lock, applied at the next lock.
  mutable std::atomic<uint64_t> deferred_reserved_{0};
  mutable std::atomic<uint64_t> deferred_granted_{0};
  // The slot while nothing is deferred, else null: the fast path's one load
  // says both "a member" and "nothing to apply first".
  mutable std::atomic<Slot*> fast_slot_{nullptr};
};

// ---- the ledger's fast path (inline) -------------------------------------------
// Under the lock: the total within the capacity, the slot's field, the peak.
// A refusal is counted; a give-back is bounded by what the slot holds (a
// forked child gives back what its parent reserved before the fork) and
// bumps `released` only when an asker waits (the asker's protocol:
// docs/shared-pool.md, "Memory ordering").
template <std::atomic<uint64_t> Slot::*kField>
inline bool Member::Take(uint64_t bytes) {
  Slot* s = fast_slot_.load(std::memory_order_relaxed);
  if (__builtin_expect(s == nullptr, 0) || !TryLock()) return TakeSlow<kField>(bytes);
  Segment* seg = seg_;
  Header& h = seg->header;
  const uint64_t total = h.total.load(std::memory_order_relaxed);
  if (__builtin_expect(total > capacity_ || bytes > capacity_ - total, 0)) {
    h.refusals.fetch_add(1, std::memory_order_relaxed);
    Unlock(seg, false);
    return false;
  }
  h.total.store(total + bytes, std::memory_order_relaxed);
  if (total + bytes > h.peak.load(std::memory_order_relaxed)) {
    h.peak.store(total + bytes, std::memory_order_relaxed);
  }
  (s->*kField)
      .store((s->*kField).load(std::memory_order_relaxed) + bytes, std::memory_order_relaxed);
  Unlock(seg, false);
  return true;
}

template <std::atomic<uint64_t> Slot::*kField>
inline void Member::Give(uint64_t bytes) {
  Slot* s = fast_slot_.load(std::memory_order_relaxed);
  if (__builtin_expect(s == nullptr, 0) || !TryLock()) return GiveSlow<kField>(bytes);
  Segment* seg = seg_;
  Header& h = seg->header;
  const uint64_t held = (s->*kField).load(std::memory_order_relaxed);
  const uint64_t b = bytes < held ? bytes : held;
  (s->*kField).store(held - b, std::memory_order_relaxed);
  const uint64_t total = h.total.load(std::memory_order_relaxed);
  h.total.store(total - (b < total ? b : total), std::memory_order_relaxed);
  const bool wake = h.waiters.load(std::memory_order_relaxed) != 0;
  if (wake)
    h.released.store(h.released.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  Unlock(seg, wake);
}

// ---- the process's membership ----------------------------------------------------
// EXECMEM_SHARED (shim/startup.cc) or an engine joins the process to a pool
// before its first executor is made; from then on the ledger's functions
// (budget.h Reserve, Grant, and their give-backs) also take from and give
// back to the pool, so executors reserve initial + overhead and borrow
// growth from it.

namespace internal {
extern std::atomic<Member*> g_process_member;  // shared_process.cc
// Asked bytes (see AskOthers): in this member's slot, in no account.
extern std::atomic<uint64_t> g_asked;  // shared_process.cc
}  // namespace internal
// The process's member; null while the process has a pool of its own.
// Inline: every grant and give-back of the ledger asks.
inline Member* ProcessMember() {
  return internal::g_process_member.load(std::memory_order_acquire);
}
// Joins (or creates) the pool for the process. Refused: the process stays
// private (message says why).
JoinStatus JoinProcess(const JoinOptions& options, char* message, size_t cap);
// A pthread_atfork child handler: the child takes a slot of its own.
void ProcessAfterForkInChild();
// ReclaimDead at most once per kReclaimEveryMs per process (a refused grant
// calls it; a full pool must not make every refusal walk /proc); the bytes
// reclaimed.
uint64_t ReclaimDeadThrottled(Member* m);

// ---- asking the others (the executor layer's reclaim loop decides to) ----------
// What other members gave back to this process's asks is held for the
// process's next grants (the ledger's Grant takes it before the pool's), so
// that another member cannot take it between the answer and the retry:
// "asked bytes", in this member's slot as granted, in no account yet.
//
// m->GrantOrAsk(bytes, wait_ms); true: `bytes` more asked bytes are held.
bool AskOthers(Member* m, uint64_t bytes, uint64_t wait_ms);
// A grant of the process's ledger: the asked bytes first, the rest from the
// pool (m->Grant); both or neither.
bool GrantFromAsked(Member* m, uint64_t bytes);  // out of line: bytes were asked for
// Inline: every grant of a member asks, and nothing was asked for but after a
// refusal.
inline bool GrantFromAskedOrPool(Member* m, uint64_t bytes) {
  if (internal::g_asked.load(std::memory_order_relaxed) == 0) return m->Grant(bytes);
  return GrantFromAsked(m, bytes);
}
// Gives the asked bytes no grant used back to the pool, once the last ask
// was answered at least older_than_ms ago (its asker has retried by then);
// the bytes.
uint64_t ReturnAsked(Member* m, uint64_t older_than_ms);
// This process's figures for the others (used = held - cached, footprint =
// held, from pool::Counters), as the ledger publishes them at each grant.
void PublishProcess(Member* m);
// At exit: the process stops drawing on the pool (ProcessMember() is null
// from now on, so its last allocations are its own pool's) and gives back
// every reservation and grant its slot holds. The slot itself stays until
// the process is gone (a thread that loaded the member before may still
// give back or take; the survivors' reclaim of the dead frees it).
void DepartProcess();

}  // namespace execmem::budget::shared

#endif  // EXECMEM_BUDGET_SHARED_LEDGER_H_
