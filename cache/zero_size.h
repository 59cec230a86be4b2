// Zero-size blocks (issue 19), in every mode: malloc(0) returns a unique
// pointer into a no-access reservation, so that any read or write through it
// faults at once (as hardened_malloc's do) instead of landing unnoticed in a
// 16-byte block. free, realloc, malloc_usable_size (0) and the ownership test
// know such pointers (heap.cc, secure.cc); a second free of one is reported
// as a double free.
//
// The fast path pays nothing: SizeClassOf(0) is kZeroClass (size_class.h),
// whose current span is the empty page in every heap, so malloc(0) always
// reaches MallocSlow, which calls ZeroBlock.
//
// The pointers are the kZeroSlots 16-byte slots of a kZeroRegionBytes
// reservation (address space only), taken round robin; a bitmap (one bit a
// slot, in memory that is committed only where touched) says which are
// handed out, so a slot is never handed out twice while live.
#ifndef EXECMEM_ALLOCATOR_ZERO_SIZE_H_
#define EXECMEM_ALLOCATOR_ZERO_SIZE_H_

#include <cstddef>

namespace execmem {

inline constexpr size_t kZeroRegionBytes = size_t{64} << 20;
inline constexpr size_t kZeroSlots = kZeroRegionBytes / 16;

// A zero-size block; nullptr if the reservation cannot be made or (nearly)
// every slot is live.
void* ZeroBlock();
// Whether p lies in the reservation (a zero-size block, live or not, or an
// address inside one's slot).
bool InZeroRegion(const void* p);
// Frees p, which InZeroRegion: reports (op, then abort) a pointer that is not
// a slot's start, or a slot that is not handed out (a double free).
void FreeZeroBlock(const char* op, const void* p);

}  // namespace execmem

#endif  // EXECMEM_ALLOCATOR_ZERO_SIZE_H_
