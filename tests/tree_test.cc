// The budget tree (children inside a parent's budget, fair shares), names,
// lookup and iteration, through the C API (include/execmem.h).
//
// Sizes are whole MiB blocks (large blocks: charged and counted in used the
// moment they are made, no batching), so every figure checked is exact.
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "execmem.h"
#include "execmem.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing.h"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint64_t kMiB = uint64_t{1} << 20;
using execmem::test_support::Blocks;
using execmem::test_support::StatsOf;

execmem_executor_t* MakeRoot(const char* name, const char* initial, const char* max,
                             const char* overhead = "4m") {
  execmem_executor_options_t o{};
  o.name = name;
  o.initial = initial;
  o.max = max;
  o.overhead = overhead;
  execmem_executor_t* e = nullptr;
  EXPECT_EQ(execmem_executor_create(&o, &e), 0) << execmem_last_error();
  return e;
}

int MakeChild(execmem_executor_t* parent, const char* name, const char* initial, const char* max,
              execmem_executor_t** out, const char* overhead = nullptr) {
  execmem_executor_options_t o{};
  o.name = name;
  o.initial = initial;
  o.max = max;
  o.overhead = overhead;
  return execmem_executor_create_child(parent, &o, out);
}


// Hooks that record the order they were called in and free nothing.
struct Recorder {
  std::string* log;
  const char* tag;
  static size_t Hook(void* self, size_t) {
    auto* r = static_cast<Recorder*>(self);
    *r->log += r->tag;
    return 0;
  }
};

class TreeTest : public ::testing::Test {
 protected:
  void TearDown() override {
    execmem_bind(nullptr);
    execmem_trim();
  }
};

TEST_F(TreeTest, ChildReservesFromItsParentAndCountsInIt) {
  execmem_executor_t* root = MakeRoot("tree-root", "8m", "64m");
  const uint64_t root_fp = StatsOf(root).footprint;
  execmem_executor_t* child = nullptr;
  ASSERT_EQ(MakeChild(root, "tree-child", "4m", "32m", &child), 0) << execmem_last_error();
  EXPECT_EQ(execmem_executor_parent(child), root);
  EXPECT_EQ(execmem_executor_parent(root), nullptr);
  // The child's initial is a charge on its parent's footprint.
  EXPECT_EQ(StatsOf(root).footprint, root_fp + 4 * kMiB);
  const execmem_executor_stats_t cs = StatsOf(child);
  EXPECT_EQ(cs.initial, 4 * kMiB);
  EXPECT_EQ(cs.max, 32 * kMiB);
  EXPECT_EQ(cs.overhead, 4 * kMiB) << "a child's default overhead is its parent's";

  {
    Blocks b;
    ASSERT_TRUE(b.Fill(child, 10));
    EXPECT_EQ(StatsOf(child).used, 10 * kMiB);
    EXPECT_EQ(StatsOf(root).used, 10 * kMiB) << "a child's used counts in its parent's";
    EXPECT_GE(StatsOf(root).footprint, root_fp + StatsOf(child).footprint);
  }
  EXPECT_EQ(StatsOf(child).used, 0u);
  EXPECT_EQ(StatsOf(root).used, 0u);
  execmem_trim();
  EXPECT_EQ(execmem_executor_destroy(child), 0) << execmem_last_error();
  EXPECT_EQ(StatsOf(root).footprint, root_fp) << "the reservation went back to the parent";
  EXPECT_EQ(execmem_executor_destroy(root), 0);
}

TEST_F(TreeTest, BadChildrenAreRefusedAndNothingIsCreated) {
  execmem_executor_t* root = MakeRoot("tree-bad", "0", "16m");
  execmem_executor_t* c = nullptr;
  EXPECT_EQ(MakeChild(root, "too-big", nullptr, "32m", &c), EINVAL);
  EXPECT_THAT(execmem_last_error(), HasSubstr("'tree-bad'"));
  EXPECT_THAT(execmem_last_error(), HasSubstr("16 MiB"));
  EXPECT_EQ(execmem_executor_find("too-big"), nullptr);
  EXPECT_EQ(MakeChild(root, "upside-down", "8m", "4m", &c), EINVAL);
  EXPECT_THAT(execmem_last_error(), HasSubstr("initial"));
  EXPECT_EQ(MakeChild(root, "garbage", "lots", nullptr, &c), EINVAL);
  EXPECT_THAT(execmem_last_error(), HasSubstr("lots"));
  EXPECT_EQ(execmem_executor_create_child(nullptr, nullptr, &c), EINVAL);
  // The parent's limit is max + overhead = 20 MiB: 12 + 12 does not fit.
  execmem_executor_t* a = nullptr;
  ASSERT_EQ(MakeChild(root, "big-initial", "12m", nullptr, &a), 0) << execmem_last_error();
  EXPECT_EQ(MakeChild(root, "no-room", "12m", nullptr, &c), ENOMEM);
  EXPECT_THAT(execmem_last_error(), HasSubstr("parent 'tree-bad'"));
  EXPECT_EQ(execmem_executor_find("no-room"), nullptr);
  EXPECT_EQ(StatsOf(root).footprint, 12 * kMiB);
  EXPECT_EQ(execmem_executor_destroy(a), 0);
  EXPECT_EQ(execmem_executor_destroy(root), 0);
}

TEST_F(TreeTest, TheParentsMaxHoldsAndSiblingsSpillBeforeTheParent) {
  execmem_executor_t* root = MakeRoot("tree-max", "0", "16m");
  execmem_executor_t *a = nullptr, *b = nullptr;
  ASSERT_EQ(MakeChild(root, "sib-a", nullptr, nullptr, &a), 0);
  ASSERT_EQ(MakeChild(root, "sib-b", nullptr, nullptr, &b), 0);
  Blocks held_by_a;
  ASSERT_TRUE(held_by_a.Fill(a, 12));
  // No hooks anywhere: b's 8 MiB would pass the parent's max.
  Blocks held_by_b;
  EXPECT_FALSE(held_by_b.Fill(b, 8));
  EXPECT_THAT(execmem_last_error(), HasSubstr("ancestor 'tree-max'"));
  EXPECT_EQ(StatsOf(b).used, 4 * kMiB);
  EXPECT_LE(StatsOf(root).used, 16 * kMiB);
  held_by_b.Free(SIZE_MAX);

  // b's own hook first, then its sibling's (above its reservation), then the
  // parent's — here the sibling frees enough and the parent is not asked.
  std::string order;
  Recorder rb{&order, "b"}, rp{&order, "p"};
  ASSERT_EQ(execmem_executor_add_spill_hook(b, "b-hook", 0, Recorder::Hook, &rb), 0);
  ASSERT_EQ(execmem_executor_add_spill_hook(root, "p-hook", 0, Recorder::Hook, &rp), 0);
  ASSERT_EQ(execmem_executor_add_spill_hook(a, "a-hook", 0, Blocks::Hook, &held_by_a), 0);
  ASSERT_TRUE(held_by_b.Fill(b, 8)) << execmem_last_error();
  // Blocks 5 to 8 each passed the parent's max by 1 MiB: b's hook, then a's.
  EXPECT_EQ(order, "bbbb");
  EXPECT_EQ(held_by_a.calls, 4);
  EXPECT_EQ(StatsOf(a).used, 8 * kMiB);
  EXPECT_EQ(StatsOf(b).used, 8 * kMiB);
  EXPECT_EQ(StatsOf(root).used, 16 * kMiB);

  // With nothing left in the sibling above its reservation, the parent's hook.
  ASSERT_EQ(execmem_executor_remove_spill_hook(a, "a-hook"), 0);
  order.clear();
  Blocks more;
  EXPECT_FALSE(more.Fill(b, 1));
  EXPECT_EQ(order, "bp");
  EXPECT_THAT(execmem_last_error(), HasSubstr("sib-a"));
  EXPECT_THAT(execmem_last_error(), HasSubstr("parent 'tree-max'"));

  held_by_a.Free(SIZE_MAX);
  held_by_b.Free(SIZE_MAX);
  execmem_trim();
  EXPECT_EQ(execmem_executor_destroy(a), 0);
  EXPECT_EQ(execmem_executor_destroy(b), 0);
  EXPECT_EQ(execmem_executor_destroy(root), 0);
}

TEST_F(TreeTest, FairSharesCapEachChildAndSpillTheOneAboveItsShareFirst) {
  execmem_executor_t* root = MakeRoot("tree-fair", "0", "32m", "8m");
  ASSERT_EQ(execmem_executor_set_fair_shares(root, 1), 0);
  execmem_executor_t *a = nullptr, *b = nullptr, *c = nullptr;
  ASSERT_EQ(MakeChild(root, "task-a", nullptr, nullptr, &a), 0);
  ASSERT_EQ(MakeChild(root, "task-b", nullptr, nullptr, &b), 0);
  ASSERT_EQ(MakeChild(root, "task-c", nullptr, nullptr, &c), 0);
  // Alone, a may take the whole parent (N = 1).
  Blocks ha, hb, hc;
  ASSERT_TRUE(ha.Fill(a, 20)) << execmem_last_error();
  // b is the second active child: capped at 32 / 2 = 16 MiB.
  ASSERT_TRUE(hb.Fill(b, 10)) << execmem_last_error();
  ASSERT_EQ(execmem_executor_add_spill_hook(a, "a-hook", 0, Blocks::Hook, &ha), 0);
  // 30 of 32 MiB used. b's next blocks fill the parent, then make it short:
  // a, 4 MiB above its share of 16, is asked for 1 MiB per block.
  ASSERT_TRUE(hb.Fill(b, 4)) << execmem_last_error();
  EXPECT_EQ(ha.calls, 2);
  EXPECT_EQ(StatsOf(a).used, 18 * kMiB);
  EXPECT_EQ(StatsOf(b).used, 14 * kMiB);
  // b reaches its share (a spills down to 16), then passes it: then b's own
  // hooks alone are asked (none), and a is left alone.
  EXPECT_FALSE(hb.Fill(b, 3));
  EXPECT_EQ(ha.calls, 4);
  EXPECT_EQ(StatsOf(a).used, 16 * kMiB);
  EXPECT_EQ(StatsOf(b).used, 16 * kMiB);
  EXPECT_THAT(execmem_last_error(), HasSubstr("fair share"));
  EXPECT_THAT(execmem_last_error(), HasSubstr("1/2"));
  // A third child becomes active (a, above its reservation, makes room);
  // then each is capped at 32 / 3 MiB.
  ASSERT_TRUE(hc.Fill(c, 1)) << execmem_last_error();
  EXPECT_EQ(StatsOf(a).used, 15 * kMiB);
  EXPECT_FALSE(hb.Fill(b, 1)) << "16 MiB is above 1/3 of 32 MiB";
  EXPECT_THAT(execmem_last_error(), HasSubstr("1/3"));
  // Turned off, b may grow while its parent has room.
  ASSERT_EQ(execmem_executor_set_fair_shares(root, 0), 0);
  hc.Free(SIZE_MAX);
  const int calls = ha.calls;
  EXPECT_TRUE(hb.Fill(b, 1)) << execmem_last_error();
  EXPECT_EQ(ha.calls, calls);
  EXPECT_EQ(StatsOf(b).used, 17 * kMiB);

  ha.Free(SIZE_MAX);
  hb.Free(SIZE_MAX);
  execmem_trim();
  for (execmem_executor_t* e : {a, b, c, root}) EXPECT_EQ(execmem_executor_destroy(e), 0);
}

TEST_F(TreeTest, DestroyingANodeWithLiveChildrenIsRefused) {
  execmem_executor_t* root = MakeRoot("tree-busy", "0", "64m");
  execmem_executor_t *mid = nullptr, *leaf = nullptr;
  ASSERT_EQ(MakeChild(root, "busy-mid", nullptr, "32m", &mid), 0);
  ASSERT_EQ(MakeChild(mid, "busy-leaf", "2m", "16m", &leaf), 0);
  EXPECT_EQ(execmem_executor_destroy(root), EBUSY);
  EXPECT_THAT(execmem_last_error(), HasSubstr("children"));
  EXPECT_EQ(execmem_executor_destroy(mid), EBUSY);
  EXPECT_EQ(execmem_executor_find("busy-mid"), mid) << "a refused destroy changes nothing";
  // A thread may bind to any node.
  void* p;
  {
    execmem_executor_t* prev = execmem_bind(leaf);
    EXPECT_EQ(execmem_current_executor(), leaf);
    p = execmem_malloc(3 * kMiB);
    ASSERT_NE(p, nullptr);
    execmem_bind(prev);
  }
  EXPECT_EQ(StatsOf(root).used, 3 * kMiB);
  // A destroyed child's live block still counts in its ancestors until freed.
  EXPECT_EQ(execmem_executor_destroy(leaf), 0);
  EXPECT_EQ(execmem_executor_find("busy-leaf"), nullptr);
  EXPECT_EQ(StatsOf(mid).used, 3 * kMiB);
  EXPECT_EQ(StatsOf(root).used, 3 * kMiB);
  execmem_free(p);
  EXPECT_EQ(StatsOf(mid).used, 0u);
  EXPECT_EQ(StatsOf(root).used, 0u);
  EXPECT_EQ(StatsOf(mid).footprint, 0u) << "the freed child gave its reservation back";
  EXPECT_EQ(execmem_executor_destroy(mid), 0);
  EXPECT_EQ(execmem_executor_destroy(root), 0);
}

TEST_F(TreeTest, NamesAreUniqueAndFoundChildrenIncluded) {
  execmem_executor_t* a = MakeRoot("unique", "0", "16m");
  execmem_executor_options_t o{};
  o.name = "unique";
  execmem_executor_t* dup = nullptr;
  EXPECT_EQ(execmem_executor_create(&o, &dup), EEXIST);
  EXPECT_THAT(execmem_last_error(), HasSubstr("'unique'"));
  o.name = "default";
  EXPECT_EQ(execmem_executor_create(&o, &dup), EEXIST) << "the default executor's name is taken";
  execmem_executor_t* child = nullptr;
  EXPECT_EQ(MakeChild(a, "unique", nullptr, nullptr, &child), EEXIST);
  ASSERT_EQ(MakeChild(a, "unique-child", nullptr, nullptr, &child), 0);
  EXPECT_EQ(execmem_executor_find("unique"), a);
  EXPECT_EQ(execmem_executor_find("unique-child"), child);
  EXPECT_EQ(execmem_executor_find("default"), execmem_default_executor());
  errno = 0;
  EXPECT_EQ(execmem_executor_find("nobody"), nullptr);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(execmem_executor_find(nullptr), nullptr);
  // Unnamed executors get distinct names.
  execmem_executor_options_t unnamed{};
  unnamed.initial = "0";
  unnamed.max = "8m";
  execmem_executor_t *u1 = nullptr, *u2 = nullptr;
  ASSERT_EQ(execmem_executor_create(&unnamed, &u1), 0);
  ASSERT_EQ(execmem_executor_create(&unnamed, &u2), 0);
  EXPECT_STRNE(execmem_executor_name(u1), execmem_executor_name(u2));
  EXPECT_EQ(execmem_executor_find(execmem_executor_name(u2)), u2);
  // A destroyed executor's name is free again.
  EXPECT_EQ(execmem_executor_destroy(child), 0);
  EXPECT_EQ(execmem_executor_find("unique-child"), nullptr);
  ASSERT_EQ(MakeChild(a, "unique-child", nullptr, nullptr, &child), 0);
  for (execmem_executor_t* e : {child, a, u1, u2}) EXPECT_EQ(execmem_executor_destroy(e), 0);
}

TEST_F(TreeTest, ForEachVisitsRootsOrChildrenAndStopsWhenAsked) {
  execmem_executor_t* root = MakeRoot("each-root", "0", "16m");
  std::vector<execmem_executor_t*> kids(5);
  for (int i = 0; i < 5; ++i) {
    const std::string name = "each-" + std::to_string(i);
    ASSERT_EQ(MakeChild(root, name.c_str(), nullptr, nullptr, &kids[i]), 0);
  }
  auto collect = [](execmem_executor_t* e, void* ctx) {
    static_cast<std::vector<std::string>*>(ctx)->push_back(execmem_executor_name(e));
    return 0;
  };
  std::vector<std::string> names;
  EXPECT_EQ(execmem_executor_for_each(root, collect, &names), 0);
  EXPECT_THAT(names,
              ::testing::UnorderedElementsAre("each-0", "each-1", "each-2", "each-3", "each-4"));
  names.clear();
  EXPECT_EQ(execmem_executor_for_each(nullptr, collect, &names), 0);
  EXPECT_THAT(names, ::testing::Contains("each-root"));
  EXPECT_THAT(names, ::testing::Contains("default"));
  EXPECT_THAT(names, Not(::testing::Contains("each-0"))) << "NULL lists the roots";
  int seen = 0;
  auto stop_at_two = [](execmem_executor_t*, void* ctx) {
    return ++*static_cast<int*>(ctx) == 2 ? 7 : 0;
  };
  EXPECT_EQ(execmem_executor_for_each(root, stop_at_two, &seen), 7);
  EXPECT_EQ(seen, 2);
  EXPECT_EQ(execmem_executor_for_each(root, nullptr, nullptr), EINVAL);
  // The callback may destroy what it visits.
  auto destroy = [](execmem_executor_t* e, void*) { return execmem_executor_destroy(e); };
  EXPECT_EQ(execmem_executor_for_each(root, destroy, nullptr), 0);
  names.clear();
  EXPECT_EQ(execmem_executor_for_each(root, collect, &names), 0);
  EXPECT_TRUE(names.empty());
  EXPECT_EQ(execmem_executor_destroy(root), 0);
}

TEST_F(TreeTest, ForEachWhileAnotherThreadCreatesAndDestroys) {
  // Every executor live for the whole walk is seen; the churned ones may or
  // may not be, and reading them is safe either way (ASan / TSan check it).
  execmem_executor_t* root = MakeRoot("churn-root", "0", "64m");
  execmem_executor_t* stable = nullptr;
  ASSERT_EQ(MakeChild(root, "churn-stable", nullptr, nullptr, &stable), 0);
  std::atomic<bool> stop{false};
  std::thread churn([&] {
    for (int i = 0; !stop.load(); ++i) {
      execmem_executor_t* c = nullptr;
      const std::string name = "churn-" + std::to_string(i % 4);
      if (MakeChild(root, name.c_str(), nullptr, "8m", &c) == 0) execmem_executor_destroy(c);
    }
  });
  struct Seen {
    int stable = 0;
    uint64_t bytes = 0;
  };
  for (int round = 0; round < 300; ++round) {
    Seen seen;
    execmem_executor_for_each(
        root,
        [](execmem_executor_t* e, void* ctx) {
          auto* s = static_cast<Seen*>(ctx);
          if (strcmp(execmem_executor_name(e), "churn-stable") == 0) ++s->stable;
          s->bytes += StatsOf(e).max;
          return 0;
        },
        &seen);
    ASSERT_EQ(seen.stable, 1) << "round " << round;
  }
  stop = true;
  churn.join();
  EXPECT_EQ(execmem_executor_destroy(stable), 0);
  EXPECT_EQ(execmem_executor_destroy(root), 0);
}

TEST_F(TreeTest, CppChildrenAndReservations) {
  execmem::ExecutorConfig config;
  config.name = "cpp-root";
  config.initial = "0";
  config.max = "32m";
  auto root = execmem::Executor::Create(config);
  ASSERT_TRUE(root.ok()) << execmem_last_error();
  config.name = "cpp-child";
  config.max = "64m";
  EXPECT_FALSE(root->CreateChild(config).ok()) << "max above the parent's";
  EXPECT_THAT(execmem_last_error(), HasSubstr("'cpp-root'"));
  config.max = "";
  auto child = root->CreateChild(config);
  ASSERT_TRUE(child.ok()) << execmem_last_error();
  EXPECT_EQ(child->Stats().max, 32 * kMiB);
  EXPECT_EQ(execmem_executor_parent(child->get()), root->get());
  {
    execmem::Reservation r(*child);
    EXPECT_TRUE(r.TryGrow(8 * kMiB));
    EXPECT_TRUE(r.TryGrow(8 * kMiB));
    EXPECT_EQ(r.size(), 16 * kMiB);
    EXPECT_EQ(child->Stats().used, 16 * kMiB);
    EXPECT_EQ(root->Stats().used, 16 * kMiB);
    EXPECT_FALSE(r.TryGrow(20 * kMiB)) << "16 + 20 MiB is above max";
    EXPECT_THAT(execmem_last_error(), HasSubstr("'cpp-child'"));
    EXPECT_EQ(r.size(), 16 * kMiB);
    EXPECT_FALSE(r.TryGrow(SIZE_MAX)) << "size() + SIZE_MAX overflows";
    EXPECT_THAT(execmem_last_error(), HasSubstr("never fit"));
    EXPECT_FALSE(r.Shrink(17 * kMiB));
    EXPECT_THAT(execmem_last_error(), HasSubstr("more than"));
    EXPECT_EQ(r.size(), 16 * kMiB);
    EXPECT_TRUE(r.Shrink(6 * kMiB));
    EXPECT_EQ(child->Stats().used, 10 * kMiB);
    EXPECT_TRUE(r.Resize(30 * kMiB));
    EXPECT_EQ(child->Stats().used, 30 * kMiB);
    EXPECT_FALSE(r.Resize(40 * kMiB));
    EXPECT_EQ(r.size(), 30 * kMiB);
    EXPECT_TRUE(r.Resize(kMiB));
    EXPECT_EQ(root->Stats().used, kMiB);
    execmem::Reservation moved = std::move(r);
    EXPECT_EQ(r.size(), 0u);
    EXPECT_EQ(moved.size(), kMiB);
    EXPECT_FALSE(root->Destroy().ok()) << "a parent with a live child";
  }
  EXPECT_EQ(child->Stats().used, 0u) << "the reservation gave everything back";
  EXPECT_TRUE(child->SetLimits({.name = "", .initial = "2m", .max = "", .overhead = ""}).ok())
      << execmem_last_error();
  EXPECT_EQ(child->Stats().initial, 2 * kMiB);
  EXPECT_TRUE(child->Destroy().ok());
  EXPECT_TRUE(root->Destroy().ok());
}

}  // namespace
