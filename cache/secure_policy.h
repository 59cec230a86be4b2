// Secure mode's policies (EXECMEM_SECURE=1), in one place: what a secure heap
// stores in and around its blocks, and how it orders and holds them back.
// The span and free-list code is heap.cc's; secure.cc runs it with these
// policies on the slow path (a secure heap never has a current span, so its
// calls never take the inline fast path, which stays as it is).
//
// A small block of a secure span (cache/secure.h for the whole picture):
//
//   | word 0 | bytes 8 .. n | slack [n, size - 8): 0xAB | tail word |
//
//   live:  word 0 and the bytes up to n are the program's; the tail word is
//          the canary, LiveCanary(b, n) (n <= size - 8 decodes back).
//   free:  every byte is zero but the tail word, FreeMark(b), and, on a
//          span's free list, word 0, the encoded link (EncodeLink). A block
//          in the quarantine ring has no link: it reads all zero.
//
// Every tail word is a live canary or a free mark: a free checks its block's
// and the word before it (the block before's tail), the next secure malloc
// the block handed out last, and a reuse (Pop) that the block is still free
// and zero. Each is a single aligned 8-byte store, so another thread's free
// or realloc of a neighbour never shows a torn value.
#ifndef EXECMEM_CACHE_SECURE_POLICY_H_
#define EXECMEM_CACHE_SECURE_POLICY_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "cache/span.h"

namespace execmem {
class Heap;
}  // namespace execmem

namespace execmem::secure {

// Page::secure bits.
inline constexpr uint8_t kSpan = 1;         // a small span carved in secure mode
inline constexpr uint8_t kQuarantined = 2;  // a large block in the quarantine

// ---- the quarantine ----
// Freed small blocks wait in a ring of pointers per heap (FIFO) until
// kQuarantineSlots newer frees or kQuarantineBytes pushed them out: a block
// freed is not handed out again at once (use after free lands in a zero
// block, not in the next object; a double free finds the free mark). Small,
// so that the blocks it holds stay in cache (a 256 KiB list through the
// blocks cost 2-3 x the default mode's CPU: docs/safety.md).
inline constexpr uint32_t kQuarantineSlots = 64;
inline constexpr size_t kQuarantineBytes = size_t{64} << 10;
// Large blocks (PROT_NONE meanwhile): a list through Page::next.
inline constexpr size_t kLargeQuarantineBytes = size_t{8} << 20;
inline constexpr uint32_t kLargeQuarantineBlocks = 8;

// A secure heap's own state (Heap::sec), owner thread only.
struct HeapState {
  uint64_t rng = 0;  // xorshift64*, seeded per heap
  Block* ring[kQuarantineSlots] = {};
  uint32_t ring_head = 0;  // the oldest entry
  uint32_t ring_count = 0;
  size_t ring_bytes = 0;
  // The small block handed out last (checked at the next secure malloc).
  char* last_alloc = nullptr;
  Page* large_head = nullptr;  // oldest first
  Page* large_tail = nullptr;
  size_t large_bytes = 0;
  uint32_t large_count = 0;
};

// ---- per-process secrets (secure.cc sets them once, in Decide) ----
extern uint64_t g_canary_key;
extern uint64_t g_link_key;

[[gnu::always_inline]] inline uintptr_t Addr(const void* p) {
  return reinterpret_cast<uintptr_t>(p);
}

// ---- encoded free-list links (glibc's safe-linking, mimalloc's MI_SECURE) ----
[[gnu::always_inline]] inline uint64_t EncodeLink(const void* next, const void* slot) {
  return Addr(next) ^ g_link_key ^ (Addr(slot) >> 4);
}
[[gnu::always_inline]] inline char* DecodeLink(uint64_t v, const void* slot) {
  return reinterpret_cast<char*>(v ^ g_link_key ^ (Addr(slot) >> 4));
}

// ---- tail words ----
// Bit 63 is always set and the first byte (the one right after the slack,
// little-endian) is always kTailByte: a zero or an ASCII byte written over
// either end of a tail word always shows, whatever the secret (the rest is
// keyed, so it cannot be forged without it).
inline constexpr uint64_t kTailByte = 0xA5;
[[gnu::always_inline]] inline uint64_t CanaryMask(const void* b) {
  const uint64_t keyed = ((Addr(b) * 0x9E3779B97F4A7C15ull) ^ g_canary_key) | (uint64_t{1} << 63);
  return (keyed & ~uint64_t{0xFF}) | kTailByte;
}
inline constexpr uint64_t kFreeTag = uint64_t{1} << 54;  // as a size: no block is that large
// A live block being resized in place by realloc (its slack is changing):
// valid, but its neighbours' checks skip it.
inline constexpr uint64_t kBusyTag = uint64_t{1} << 53;
[[gnu::always_inline]] inline uint64_t LiveCanary(const void* b, size_t n) {
  return CanaryMask(b) ^ (uint64_t{n} << 8);
}
[[gnu::always_inline]] inline uint64_t FreeMark(const void* b) {
  return CanaryMask(b) ^ (kFreeTag << 8);
}
[[gnu::always_inline]] inline uint64_t BusyMark(const void* b) {
  return CanaryMask(b) ^ (kBusyTag << 8);
}
// The requested size a live canary holds, kFreeTag for a free mark, or a
// value above every block size for anything else.
[[gnu::always_inline]] inline uint64_t CanarySize(uint64_t tail, const void* b) {
  const uint64_t x = tail ^ CanaryMask(b);
  return (x & 0xFF) != 0 ? ~uint64_t{0} : x >> 8;
}
// Whether `tail` is a tail word block b (of `size` bytes) may hold.
[[gnu::always_inline]] inline bool ValidTail(uint64_t tail, const void* b, uint32_t size) {
  const uint64_t n = CanarySize(tail, b);
  return n <= size - 8 || n == kFreeTag || n == kBusyTag;
}
// Tail words are written by whoever frees or reallocates the block and read
// by its neighbours' checks on other threads: one relaxed 8-byte access each.
[[gnu::always_inline]] inline uint64_t LoadTail(const char* b, uint32_t size) {
  return std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(const_cast<char*>(b) + size - 8))
      .load(std::memory_order_relaxed);
}
[[gnu::always_inline]] inline void StoreTail(char* b, uint32_t size, uint64_t v) {
  std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(b + size - 8))
      .store(v, std::memory_order_relaxed);
}

// ---- random carving: a per-heap xorshift64*, no division ----
[[gnu::always_inline]] inline uint64_t NextRandom(HeapState* s) {
  uint64_t x = s->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  s->rng = x;
  return x * 0x2545F4914F6CDD1Dull;
}
// Uniform enough in [0, n) (Lemire's multiply-shift).
[[gnu::always_inline]] inline uint32_t RandomBelow(HeapState* s, uint32_t n) {
  return static_cast<uint32_t>(((NextRandom(s) >> 32) * n) >> 32);
}

}  // namespace execmem::secure

#endif  // EXECMEM_CACHE_SECURE_POLICY_H_
