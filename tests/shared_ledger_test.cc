// The shared pool's ledger (budget/shared_ledger.h): members in threads and
// in forked processes granting and giving back at once, members killed with
// SIGKILL anywhere in a grant loop, reused pids, stopped members, refused
// segments, fork. Every pool is named after this test process's pid and
// removed at the end; waits are on events (pipes, futexes), with generous
// bounds as failure guards only.
#include "budget/shared_ledger.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "platform/os.h"
#include "platform/shm.h"

namespace execmem::budget::shared {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr int kGuardMs = 60'000;  // failure guard for waits on children

// A pool named after this process and test, removed at the end.
class SharedPool : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    name_ = "test-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
    char seg[256];
    ASSERT_TRUE(SegmentName(name_.c_str(), seg, sizeof seg));
    segment_ = seg;
    file_ = "/dev/shm/" + segment_;
  }
  void TearDown() override {
    for (pid_t pid : children_) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    os::ShmUnlink(segment_.c_str());
  }

  JoinStatus Join(Member* m, uint64_t capacity, std::string* message = nullptr,
                  uint32_t mode = 0600) {
    JoinOptions o;
    o.pool = name_.c_str();
    o.capacity = capacity;
    o.mode = mode;
    char msg[512];
    const JoinStatus s = m->Join(o, msg, sizeof msg);
    if (message != nullptr) *message = msg;
    return s;
  }

  // The segment mapped read-write by the test itself (to forge and corrupt).
  Segment* MapRaw() {
    os::ShmMapping map;
    os::ShmStat st;
    if (os::ShmOpen(segment_.c_str(), true, 1, 1 << 30, &map, &st) != 0) return nullptr;
    raw_.push_back(map);
    return static_cast<Segment*>(map.base);
  }

  PoolView View() {
    auto v = std::make_unique<PoolView>();
    char msg[512];
    EXPECT_EQ(ReadPool(name_.c_str(), v.get(), msg, sizeof msg), 0) << msg;
    PoolView out = *v;
    return out;
  }

  // Forks a child running fn(write end of a pipe) and then _exit(0); the
  // read end is returned.
  int Fork(const std::function<void(int)>& fn) {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    const pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      fn(fds[1]);
      _exit(0);
    }
    close(fds[1]);
    children_.push_back(pid);
    last_child_ = pid;
    return fds[0];
  }

  // Reads one uint64 a child wrote; fails the test on timeout or EOF.
  static uint64_t ReadWord(int fd) {
    pollfd p{fd, POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, kGuardMs), 1) << "the child did not answer";
    uint64_t v = 0;
    EXPECT_EQ(read(fd, &v, sizeof v), static_cast<ssize_t>(sizeof v));
    return v;
  }
  static void WriteWord(int fd, uint64_t v) {
    if (write(fd, &v, sizeof v) != static_cast<ssize_t>(sizeof v)) _exit(3);
  }

  void Reap(pid_t pid) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    std::erase(children_, pid);
  }

  ~SharedPool() override {
    for (os::ShmMapping& m : raw_) os::ShmUnmap(&m);
  }

  std::string name_, segment_, file_;
  std::vector<pid_t> children_;
  pid_t last_child_ = 0;
  std::vector<os::ShmMapping> raw_;
};

TEST_F(SharedPool, CreatorFixesTheCapacityAndLaterMembersAreTold) {
  Member a, b, c;
  std::string msg;
  ASSERT_EQ(Join(&a, 64 * kMiB, &msg), JoinStatus::kCreated) << msg;
  EXPECT_EQ(a.capacity(), 64 * kMiB);
  ASSERT_EQ(Join(&b, 0, &msg), JoinStatus::kJoined) << msg;
  EXPECT_EQ(msg, "");
  ASSERT_EQ(Join(&c, 128 * kMiB, &msg), JoinStatus::kJoined) << msg;
  EXPECT_EQ(c.capacity(), 64 * kMiB);
  EXPECT_NE(msg.find(file_), std::string::npos) << msg;
  EXPECT_NE(msg.find("67108864"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line";
  struct stat st;
  ASSERT_EQ(stat(file_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(View().members, 3u);
  std::string again;
  EXPECT_EQ(Join(&a, 0, &again), JoinStatus::kRefused);
}

TEST_F(SharedPool, GrantsStayWithinTheCapacityAndComeBack) {
  Member a, b;
  ASSERT_EQ(Join(&a, 10 * kMiB), JoinStatus::kCreated);
  ASSERT_EQ(Join(&b, 0), JoinStatus::kJoined);
  EXPECT_TRUE(a.Reserve(4 * kMiB));
  EXPECT_TRUE(b.Grant(6 * kMiB));
  EXPECT_FALSE(a.Grant(1));
  EXPECT_FALSE(b.Reserve(1));
  b.Ungrant(2 * kMiB);
  EXPECT_TRUE(a.Grant(2 * kMiB));
  a.ReservedToGranted(kMiB);
  EXPECT_EQ(a.Reserved(), 3 * kMiB);
  EXPECT_EQ(a.Granted(), 3 * kMiB);
  EXPECT_TRUE(a.IsValid());
  PoolView v = View();
  EXPECT_EQ(v.total, 10 * kMiB);
  EXPECT_EQ(v.reserved, 3 * kMiB);
  EXPECT_EQ(v.granted, 7 * kMiB);
  // Giving back more than held gives back what is held, no more.
  b.Ungrant(100 * kMiB);
  EXPECT_EQ(b.Granted(), 0u);
  EXPECT_EQ(View().total, 6 * kMiB);
  a.Leave();
  EXPECT_EQ(View().total, 0u);
  EXPECT_TRUE(b.Grant(10 * kMiB));
  EXPECT_TRUE(b.IsValid());
}

// Members in threads granting and giving back at once: never past the
// capacity, and each member's slot holds exactly what it took.
TEST_F(SharedPool, ManyMembersGrantAndReturnAtOnce) {
  constexpr int kMembers = 8;
  constexpr uint64_t kCapacity = 40 * kMiB;
  std::vector<std::unique_ptr<Member>> m;
  for (int i = 0; i < kMembers; ++i) {
    m.push_back(std::make_unique<Member>());
    ASSERT_NE(Join(m.back().get(), kCapacity), JoinStatus::kRefused);
  }
  std::atomic<bool> over{false};
  std::atomic<int> running{kMembers};
  std::vector<uint64_t> held(kMembers, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kMembers; ++i) {
    threads.emplace_back([&, i] {
      std::mt19937_64 rng(i);
      std::vector<uint64_t> grants, reservations;
      for (int n = 0; n < 3000; ++n) {
        const uint64_t b = (rng() % 4 + 1) * kMiB;
        switch (rng() % 4) {
          case 0:
            if (m[i]->Grant(b)) grants.push_back(b);
            break;
          case 1:
            if (m[i]->Reserve(b)) reservations.push_back(b);
            break;
          case 2:
            if (!grants.empty()) {
              m[i]->Ungrant(grants.back());
              grants.pop_back();
            }
            break;
          default:
            if (!reservations.empty()) {
              m[i]->Unreserve(reservations.back());
              reservations.pop_back();
            }
        }
      }
      for (uint64_t g : grants) held[i] += g;
      for (uint64_t r : reservations) held[i] += r;
      running.fetch_sub(1);
    });
  }
  auto v = std::make_unique<PoolView>();
  char msg[256];
  while (running.load() > 0) {
    ASSERT_EQ(ReadPool(name_.c_str(), v.get(), msg, sizeof msg), 0);
    if (v->total > kCapacity) over = true;
  }
  for (auto& t : threads) t.join();
  EXPECT_FALSE(over.load()) << "the total passed the capacity";
  EXPECT_TRUE(m[0]->IsValid());
  uint64_t sum = 0;
  for (int i = 0; i < kMembers; ++i) {
    EXPECT_EQ(m[i]->Reserved() + m[i]->Granted(), held[i]) << "member " << i;
    sum += held[i];
  }
  EXPECT_EQ(View().total, sum);
  EXPECT_LE(sum, kCapacity);
  for (auto& member : m) member->Leave();
}

// The same across processes: children grant and give back at once, report
// what they hold; the slots say the same and the pool is never over.
TEST_F(SharedPool, ManyProcessesGrantAndReturnAtOnce) {
  constexpr int kChildren = 6;
  constexpr uint64_t kCapacity = 30 * kMiB;
  Member parent;
  ASSERT_EQ(Join(&parent, kCapacity), JoinStatus::kCreated);
  std::vector<int> fds;
  std::vector<pid_t> pids;
  for (int c = 0; c < kChildren; ++c) {
    fds.push_back(Fork([&, c](int out) {
      Member m;
      if (Join(&m, 0) == JoinStatus::kRefused) _exit(2);
      std::mt19937_64 rng(c + 100);
      uint64_t held = 0;
      std::vector<uint64_t> grants;
      for (int n = 0; n < 4000; ++n) {
        const uint64_t b = (rng() % 3 + 1) * kMiB;
        if (rng() % 2 == 0) {
          if (m.Grant(b)) grants.push_back(b);
        } else if (!grants.empty()) {
          m.Ungrant(grants.back());
          grants.pop_back();
        }
      }
      for (uint64_t g : grants) held += g;
      WriteWord(out, held);
      char buf;
      (void)!read(out, &buf, 1);  // never answered: wait to be killed
      for (;;) pause();
    }));
    pids.push_back(last_child_);
  }
  uint64_t sum = 0;
  for (int c = 0; c < kChildren; ++c) sum += ReadWord(fds[c]);
  PoolView v = View();
  EXPECT_EQ(v.total, sum);
  EXPECT_EQ(v.granted, sum);
  EXPECT_LE(v.total, kCapacity);
  EXPECT_EQ(v.members, kChildren + 1u);
  EXPECT_TRUE(parent.IsValid());
  for (pid_t pid : pids) {
    kill(pid, SIGKILL);
    Reap(pid);
  }
  for (int fd : fds) close(fd);
  EXPECT_EQ(parent.ReclaimDead(), sum);
  EXPECT_EQ(View().total, 0u);
  EXPECT_EQ(View().members, 1u);
  EXPECT_TRUE(parent.IsValid());
}

// Members killed at random points of a grant loop (often inside the lock):
// the ledger stays consistent and the whole capacity comes back each time.
TEST_F(SharedPool, KilledMembersGiveEverythingBack) {
  constexpr uint64_t kCapacity = 16 * kMiB;
  constexpr int kRounds = 40;
  Member parent;
  ASSERT_EQ(Join(&parent, kCapacity), JoinStatus::kCreated);
  std::mt19937_64 rng(7);
  for (int round = 0; round < kRounds; ++round) {
    const int fd = Fork([&](int out) {
      Member m;
      if (Join(&m, 0) == JoinStatus::kRefused) _exit(2);
      WriteWord(out, 1);
      std::mt19937_64 r(getpid());
      for (;;) {
        const uint64_t b = (r() % 4 + 1) * kMiB;
        if (m.Reserve(b)) {
          if (m.Grant(b)) m.Ungrant(b / 2);
          m.ReservedToGranted(b / 4);
        } else {
          m.Ungrant(m.Granted());
          m.Unreserve(m.Reserved());
        }
      }
    });
    const pid_t child = last_child_;
    ASSERT_EQ(ReadWord(fd), 1u);
    // A random point: spin a random number of reads of the pool.
    const int spins = static_cast<int>(rng() % 20000);
    volatile uint64_t sink = 0;
    for (int i = 0; i < spins; ++i) sink = sink + os::NowNs();
    kill(child, SIGKILL);
    if (round % 2 == 0) {
      // A zombie (killed, not yet reaped) is dead too.
      siginfo_t info;
      ASSERT_EQ(waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT), 0);
      parent.ReclaimDead();
      Reap(child);
    } else {
      Reap(child);
      parent.ReclaimDead();
    }
    close(fd);
    ASSERT_TRUE(parent.IsValid()) << "round " << round;
    ASSERT_EQ(View().total, 0u) << "round " << round;
    ASSERT_TRUE(parent.Grant(kCapacity)) << "round " << round << ": the capacity is back";
    parent.Ungrant(kCapacity);
  }
  const PoolView v = View();
  EXPECT_EQ(v.reclaimed_members, static_cast<uint64_t>(kRounds));
  // How often a child died holding the lock (the repair path), for the log.
  std::printf("%d members killed, %llu reclaimed, %llu died holding the lock\n", kRounds,
              static_cast<unsigned long long>(v.reclaimed_members),
              static_cast<unsigned long long>(v.repairs));
}

// A slot whose pid is now another process (same pid, other start time) is
// the dead member's; one with the right start time is kept.
TEST_F(SharedPool, AReusedPidIsNotTheDeadMember) {
  Member a;
  ASSERT_EQ(Join(&a, 64 * kMiB), JoinStatus::kCreated);
  Segment* raw = MapRaw();
  ASSERT_NE(raw, nullptr);
  const pid_t live = getppid();  // a live process that is not a member
  const uint64_t ticks = os::ReadProcessStat(live).start_ticks;
  ASSERT_NE(ticks, 0u);
  // Forged by hand as a member that died and whose pid was reused.
  Slot& forged = raw->slot[kSlots - 1];
  Slot& kept = raw->slot[kSlots - 2];
  for (Slot* s : {&forged, &kept}) {
    s->pid.store(live);
    s->reserved.store(5 * kMiB);
    s->granted.store(3 * kMiB);
    s->state.store(kMember);
  }
  forged.start_ticks.store(ticks + 1);
  kept.start_ticks.store(ticks);
  raw->header.total.fetch_add(16 * kMiB);
  EXPECT_TRUE(a.IsValid());
  EXPECT_EQ(a.ReclaimDead(), 8 * kMiB);
  EXPECT_EQ(forged.state.load(), kFree);
  EXPECT_EQ(kept.state.load(), kMember) << "the same process, alive";
  EXPECT_EQ(View().total, 8 * kMiB);
  EXPECT_TRUE(a.IsValid());
  kept.state.store(kFree);  // not a member: leave the pool clean
}

TEST_F(SharedPool, AStoppedMemberKeepsWhatItHolds) {
  Member parent;
  ASSERT_EQ(Join(&parent, 32 * kMiB), JoinStatus::kCreated);
  const int fd = Fork([&](int out) {
    Member m;
    if (Join(&m, 0) == JoinStatus::kRefused || !m.Grant(20 * kMiB)) _exit(2);
    WriteWord(out, 1);
    for (;;) pause();
  });
  ASSERT_EQ(ReadWord(fd), 1u);
  const pid_t child = last_child_;
  ASSERT_EQ(kill(child, SIGSTOP), 0);
  siginfo_t info;
  ASSERT_EQ(waitid(P_PID, static_cast<id_t>(child), &info, WSTOPPED | WNOWAIT), 0);
  EXPECT_EQ(parent.ReclaimDead(), 0u);
  EXPECT_EQ(View().total, 20 * kMiB);
  EXPECT_FALSE(parent.GrantOrAsk(16 * kMiB, 0));
  kill(child, SIGKILL);
  Reap(child);
  close(fd);
  EXPECT_TRUE(parent.GrantOrAsk(32 * kMiB, kGuardMs)) << "dead: reclaimed at once";
}

// A refused grant asks the member holding grants; it gives back from its own
// thread (as a member's background thread does) and the asker gets it.
TEST_F(SharedPool, AnAskedMemberGivesBack) {
  Member parent;
  ASSERT_EQ(Join(&parent, 32 * kMiB), JoinStatus::kCreated);
  const int fd = Fork([&](int out) {
    Member m;
    if (Join(&m, 0) == JoinStatus::kRefused || !m.Reserve(4 * kMiB)) _exit(2);
    for (int i = 0; i < 24; ++i) {
      if (!m.Grant(kMiB)) _exit(2);
    }
    WriteWord(out, 1);
    for (;;) {
      const uint64_t wanted = m.WaitForRequest(kGuardMs);
      if (wanted == 0) continue;
      m.Ungrant(std::min(wanted, m.Granted()));
      m.Answered();
    }
  });
  ASSERT_EQ(ReadWord(fd), 1u);
  EXPECT_FALSE(parent.Grant(10 * kMiB));
  EXPECT_TRUE(parent.GrantOrAsk(10 * kMiB, kGuardMs));
  // The child counts its answer just after giving back, which the grant may
  // already have taken: wait for the count (the guard only ends a hang).
  PoolView v = View();
  auto child_of = [](const PoolView& view) -> const MemberView& {
    return view.member[0].pid == getpid() ? view.member[1] : view.member[0];
  };
  for (const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kGuardMs);
       v.members == 2 && child_of(v).answered == 0 && std::chrono::steady_clock::now() < deadline;
       v = View()) {
    std::this_thread::yield();
  }
  ASSERT_EQ(v.members, 2u);
  const MemberView& child = child_of(v);
  EXPECT_GE(child.asked, 1u);
  EXPECT_GE(child.answered, 1u);
  EXPECT_EQ(child.reserved, 4 * kMiB) << "reservations are not asked for";
  EXPECT_LE(v.total, 32 * kMiB);
  MemberView top[2];
  ASSERT_EQ(parent.LargestHolders(top, 2), 2u);
  EXPECT_GE(top[0].granted, top[1].granted);
}

TEST_F(SharedPool, AForkedChildHasASlotOfItsOwn) {
  Member parent;
  ASSERT_EQ(Join(&parent, 32 * kMiB), JoinStatus::kCreated);
  ASSERT_TRUE(parent.Reserve(3 * kMiB));
  const int fd = Fork([&](int out) {
    parent.AfterForkInChild();
    if (!parent.joined()) _exit(2);
    WriteWord(out, parent.Reserved() + parent.Granted());  // 0: nothing inherited
    parent.Unreserve(3 * kMiB);                            // the parent's: not given back from here
    WriteWord(out, parent.Grant(kMiB) ? 1 : 0);
    for (;;) pause();
  });
  EXPECT_EQ(ReadWord(fd), 0u);
  EXPECT_EQ(ReadWord(fd), 1u);
  PoolView v = View();
  EXPECT_EQ(v.members, 2u);
  EXPECT_EQ(v.reserved, 3 * kMiB);
  EXPECT_EQ(v.granted, kMiB);
  EXPECT_EQ(parent.Reserved(), 3 * kMiB);
  EXPECT_TRUE(parent.IsValid());
}

// ---- refused segments ----------------------------------------------------------

TEST_F(SharedPool, CorruptOrOtherSegmentsAreRefusedInOneLine) {
  struct Case {
    const char* what;
    std::function<void(Segment*)> corrupt;
    off_t size;  // 0: unchanged
  };
  const std::vector<Case> cases = {
      {"bad magic", [](Segment* s) { s->header.magic = 42; }, 0},
      {"version 7", [](Segment* s) { s->header.version = 7; }, 0},
      {"slots", [](Segment* s) { s->header.slots = 1'000'000; }, 0},
      {"capacity 0", [](Segment* s) { s->header.capacity = 0; }, 0},
      {"size", nullptr, static_cast<off_t>(kSegmentBytes) + 4096},
      {"size 0 bytes", nullptr, 1},
      {"pid namespace", [](Segment* s) { s->header.pid_namespace ^= 1; }, 0},
  };
  for (const Case& c : cases) {
    {
      Member creator;
      ASSERT_EQ(Join(&creator, 8 * kMiB), JoinStatus::kCreated) << c.what;
      creator.Leave();  // its mapping would fault once the file is cut
    }
    if (c.corrupt) {
      Segment* raw = MapRaw();
      ASSERT_NE(raw, nullptr);
      c.corrupt(raw);
    }
    if (c.size != 0) {
      ASSERT_EQ(truncate(file_.c_str(), c.size == 1 ? 0 : c.size), 0);
    }
    Member joiner;
    std::string msg;
    ASSERT_EQ(Join(&joiner, 0, &msg), JoinStatus::kRefused) << c.what;
    EXPECT_NE(msg.find(file_), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_FALSE(joiner.joined());
    std::string why = c.what;
    if (why == "slots" || why == "size 0 bytes") why = "size";
    EXPECT_NE(msg.find(why), std::string::npos) << c.what << ": " << msg;
    auto v = std::make_unique<PoolView>();
    char read_msg[512];
    EXPECT_EQ(ReadPool(name_.c_str(), v.get(), read_msg, sizeof read_msg), -1) << c.what;
    EXPECT_NE(std::string(read_msg).find(file_), std::string::npos) << read_msg;
    for (os::ShmMapping& m : raw_) os::ShmUnmap(&m);
    raw_.clear();
    os::ShmUnlink(segment_.c_str());
  }
}

TEST_F(SharedPool, AnotherUsersOrAWorldWritableSegmentIsRefused) {
  {
    Member creator;
    ASSERT_EQ(Join(&creator, 8 * kMiB), JoinStatus::kCreated);
  }
  ASSERT_EQ(chown(file_.c_str(), 65534, 65534), 0);
  Member m;
  std::string msg;
  EXPECT_EQ(Join(&m, 0, &msg), JoinStatus::kRefused);
  EXPECT_NE(msg.find(file_ + ": owned by uid 65534"), std::string::npos) << msg;
  ASSERT_EQ(chown(file_.c_str(), geteuid(), getegid()), 0);
  ASSERT_EQ(chmod(file_.c_str(), 0666), 0);
  EXPECT_EQ(Join(&m, 0, &msg), JoinStatus::kRefused);
  EXPECT_NE(msg.find("mode 0666 lets every user change it"), std::string::npos) << msg;
  // Group-shared (EXECMEM_SHARED_MODE=0660) and our group: joined.
  ASSERT_EQ(chmod(file_.c_str(), 0660), 0);
  EXPECT_EQ(Join(&m, 0, &msg), JoinStatus::kJoined) << msg;
}

TEST_F(SharedPool, ANewPoolIsMadeWithTheModeAsked) {
  Member m;
  ASSERT_EQ(Join(&m, 8 * kMiB, nullptr, 0660), JoinStatus::kCreated);
  struct stat st;
  ASSERT_EQ(stat(file_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

TEST_F(SharedPool, BadNamesAreRefusedInOneLine) {
  for (const std::string& bad :
       {std::string(""), std::string("a/b"), std::string("x y"), std::string(300, 'n')}) {
    Member m;
    JoinOptions o;
    o.pool = bad.c_str();
    char msg[512];
    EXPECT_EQ(m.Join(o, msg, sizeof msg), JoinStatus::kRefused) << bad;
    EXPECT_NE(std::string(msg).find("shared pool name"), std::string::npos) << msg;
    EXPECT_EQ(std::string(msg).find('\n'), std::string::npos);
  }
  Member m;
  EXPECT_EQ(m.Join(JoinOptions{}, nullptr, 0), JoinStatus::kRefused) << "no name, no buffer";
}

// One corrupt slot (garbage pid, state, counters, name) crashes nobody: it is
// reclaimed as dead, and the ledger's total is recomputed from the slots.
TEST_F(SharedPool, ACorruptSlotCrashesNoOne) {
  Member a;
  ASSERT_EQ(Join(&a, 64 * kMiB), JoinStatus::kCreated);
  ASSERT_TRUE(a.Grant(10 * kMiB));
  Segment* raw = MapRaw();
  ASSERT_NE(raw, nullptr);
  Slot& bad = raw->slot[100];
  bad.pid.store(-5);
  bad.reserved.store(UINT64_MAX);
  bad.granted.store(UINT64_MAX / 3);
  memset(bad.program, 0xff, sizeof bad.program);
  bad.state.store(kMember);
  raw->slot[101].state.store(0xdeadbeef);  // neither free nor a member: ignored
  raw->header.total.store(UINT64_MAX);
  EXPECT_FALSE(a.IsValid());
  MemberView top[4];
  EXPECT_EQ(a.LargestHolders(top, 4), 2u);
  EXPECT_EQ(std::string(top[0].program).find('\xff'), std::string::npos);
  PoolView v = View();
  EXPECT_EQ(v.members, 2u);
  EXPECT_GT(a.ReclaimDead(), 0u);
  EXPECT_TRUE(a.IsValid());
  EXPECT_EQ(View().total, 10 * kMiB);
  EXPECT_TRUE(a.Grant(54 * kMiB));
  raw->slot[101].state.store(kFree);
}

}  // namespace
}  // namespace execmem::budget::shared
