// Tenants: whom the cache's heaps allocate for, and the one interface
// through which the layer above serves the cache (the reclaim loop).
//
// The cache charges a tenant's budget::Account and never knows what an
// executor is. A Tenant is that account plus what the cache keeps for it (its
// heaps, a name for reports, a reference count). Everything the cache needs
// from above goes through Reclaimer: charging with reclaim (trim, spill
// hooks, arbitration), the tenant unbound threads allocate for, and the end
// of a tenant's lifetime. The executor layer implements it
// (executor/reclaim.cc) and defines g_reclaimer, constant-initialised, so
// that it serves allocations made before any constructor runs; tests may
// point it elsewhere.
#ifndef EXECMEM_CACHE_TENANT_H_
#define EXECMEM_CACHE_TENANT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "budget/budget.h"
#include "cache/size_class.h"
#include "platform/os.h"
#include "pool/pool.h"

namespace execmem {

class Heap;
struct Page;

inline constexpr size_t kTenantNameSize = 64;

// The cache's side of a tenant: its account, and what the cache keeps for it.
//
// The account is a member, first: the budget tree links accounts
// (Account::parent, Verdict::at), and Tenant::Of turns such an Account* back
// into its tenant. Tenant is standard-layout, so its first member is
// pointer-interconvertible with it: the conversion is a cast with no offset
// (the static_asserts after the class keep it so).
class Tenant {
 public:
  constexpr Tenant() = default;

  // The tenant whose account `a` is (every account the cache charges, and
  // every parent and verdict's `at` of one, is a tenant's).
  static Tenant* Of(budget::Account* a) { return reinterpret_cast<Tenant*>(a); }
  static const Tenant* Of(const budget::Account* a) { return reinterpret_cast<const Tenant*>(a); }

  // Budgets, counters, the tree: what the cache charges (through
  // ChargeOrReclaim), reports used to (AddUsed) and gives back (Uncharge).
  budget::Account account;

  // Written before the tenant is shared.
  char name[kTenantNameSize] = "default";

  // Gives back a charge granted by ChargeOrReclaim (Account::Uncharge) and
  // drops the reference the charge took.
  void Uncharge(uint64_t bytes) {
    account.Uncharge(bytes);
    Unref();
  }

  // ---- lifetime: the last reference dropped ends the tenant (Reclaimer::Release) ----
  void Ref() { refs.fetch_add(1, std::memory_order_relaxed); }
  void Unref();
  std::atomic<int> refs{1};
  // Set when the tenant is being destroyed: no heap of it becomes active again.
  std::atomic<bool> closing{false};

  SpinLock heaps_lock;
  // Every heap that allocates for this tenant (linked through Heap::exec_next).
  Heap* heaps ABSL_GUARDED_BY(heaps_lock) = nullptr;
  // A heap joins or leaves `heaps` (orphanage.cc). Heap::exec_next / exec_prev
  // change only here: they carry no ABSL_GUARDED_BY, since the lock of a
  // neighbour's link is its tenant's, which the analysis cannot name from a
  // Heap; walks start at `heaps`, which it checks.
  void LinkHeapLocked(Heap* h) ABSL_EXCLUSIVE_LOCKS_REQUIRED(heaps_lock);
  void UnlinkHeapLocked(Heap* h) ABSL_EXCLUSIVE_LOCKS_REQUIRED(heaps_lock);

  // This tenant's shared spans of each class (cache/heap_internal.h:
  // IsSharedClass), those with a free block first; under the class's lock
  // (orphanage.cc: g_shared). Each span holds a reference on the tenant (its
  // charge), so a tenant ends with these lists empty.
  Page* shared_spans[kNumClasses] = {};
  // The blocks those spans have handed out, a class (the sum of their
  // `used`; under the class's lock): what a thread that takes them compares
  // with what it holds to know whether it is alone in the class
  // (orphanage.cc: SharedMalloc).
  uint32_t shared_used[kNumClasses] = {};
};

static_assert(std::is_standard_layout_v<Tenant>,
              "Tenant::Of casts an Account* to its Tenant: the account must be "
              "pointer-interconvertible with the tenant");
static_assert(offsetof(Tenant, account) == 0, "the account is Tenant's first member");

enum class ChargeFor : uint8_t {
  kAllocation,   // a span or block: the out-of-memory policy applies
  kReservation,  // execmem_reserve, a child's reservation: the caller reports
};

// What the layer above provides to the cache. Calls go down from it only:
// the cache calls these, and an implementation may call back into the cache
// only through the cache's contract (Heap::TrimEmpty, ThreadHeapsSync...).
class Reclaimer {
 public:
  // Charges `bytes` of footprint for a request of `request` bytes to t,
  // reclaiming when the account's verdict asks for it. heap: the calling
  // thread's heap for t (trimmed under pressure), or null. True: charged,
  // with a reference on t that Tenant::Uncharge drops. False: out of memory,
  // the report in ThreadLastError().
  virtual bool Charge(Tenant* t, uint64_t bytes, uint64_t request, Heap* heap, ChargeFor what) = 0;
  // The tenant of threads bound to none.
  virtual Tenant* DefaultTenant() = 0;
  // t's last reference was dropped (never the default tenant's).
  virtual void Release(Tenant* t) = 0;

 protected:
  constexpr Reclaimer() = default;
  ~Reclaimer() = default;
};

// Defined by the layer above (executor/reclaim.cc), constant-initialised.
extern Reclaimer* g_reclaimer;

inline bool ChargeOrReclaim(Tenant* t, uint64_t bytes, uint64_t request, Heap* heap,
                            ChargeFor what = ChargeFor::kAllocation) {
  return g_reclaimer->Charge(t, bytes, request, heap, what);
}

inline void Tenant::Unref() {
  if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1 && !account.is_default) {
    g_reclaimer->Release(this);
  }
}

}  // namespace execmem

#endif  // EXECMEM_CACHE_TENANT_H_
