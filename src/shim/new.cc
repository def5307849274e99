// C++ operator new and delete in all their replaceable forms, on the shim's
// allocator (shim.c).  All or none must be replaced: a block from one
// allocator must never reach the other's delete.
//
// new: on failure, call the installed new_handler and retry; with none,
// throw std::bad_alloc ([new.delete.single]).  The nothrow forms behave as
// the throwing ones and return nullptr instead of throwing.
// Sized delete passes the size to the backend (sized free); aligned forms
// ask for the alignment.  new(0) is a unique block, as malloc(0).
//
// No link to libstdc++: a C program under the shim must not load it (1.5
// MiB of resident pages with libm and libgcc_s).  A program that calls
// operator new has it loaded already, so what failure needs of it is looked
// up then: std::get_new_handler and std::__throw_bad_alloc by name, and the
// catch of the nothrow forms references the C++ runtime weakly.
#include "shim.h"

#include <cstddef>
#include <cstdlib>
#include <dlfcn.h>
#include <new>

extern "C" {
// The runtime's catch entries and personality, bound when libstdc++ is in
// the process (always, when operator new is called from C++).
__attribute__((weak)) void *__cxa_begin_catch(void *) noexcept;
__attribute__((weak)) void __cxa_end_catch();
}
// (the compiler references the personality itself: made weak here)
__asm__(".weak __gxx_personality_v0");

namespace {

// The installed new_handler, or nullptr.
std::new_handler current_handler()
{
	auto get = reinterpret_cast<std::new_handler (*)()>(
		dlsym(RTLD_DEFAULT, "_ZSt15get_new_handlerv"));
	return get ? get() : nullptr;
}

[[noreturn]] void throw_bad_alloc()
{
	auto thrower = reinterpret_cast<void (*)()>(
		dlsym(RTLD_DEFAULT, "_ZSt17__throw_bad_allocv"));
	if (thrower)
		thrower();
	std::abort(); // no C++ runtime: no C++ caller to throw to
}

// caller: the program's call site, for the core's debug and leak reports.
void *alloc_or_throw(std::size_t size, std::size_t align, const void *caller)
{
	for (;;) {
		void *p = shim_alloc(size, align, caller);
		if (p)
			return p;
		std::new_handler handler = current_handler();
		if (!handler)
			throw_bad_alloc();
		handler();
	}
}

void *alloc_or_null(std::size_t size, std::size_t align,
		    const void *caller) noexcept
{
	try {
		return alloc_or_throw(size, align, caller);
	} catch (...) {
		return nullptr;
	}
}

// std::align_val_t must be a power of two; any other value fails.
std::size_t checked(std::align_val_t al)
{
	std::size_t a = static_cast<std::size_t>(al);
	if (a == 0 || (a & (a - 1)))
		throw_bad_alloc();
	return a;
}

constexpr std::size_t plain = SHIM_MALLOC_ALIGN;

#define CALLER __builtin_return_address(0)

} // namespace

void *operator new(std::size_t n) { return alloc_or_throw(n, plain, CALLER); }
void *operator new[](std::size_t n) { return alloc_or_throw(n, plain, CALLER); }

void *operator new(std::size_t n, const std::nothrow_t &) noexcept
{
	return alloc_or_null(n, plain, CALLER);
}

void *operator new[](std::size_t n, const std::nothrow_t &) noexcept
{
	return alloc_or_null(n, plain, CALLER);
}

void *operator new(std::size_t n, std::align_val_t al)
{
	return alloc_or_throw(n, checked(al), CALLER);
}

void *operator new[](std::size_t n, std::align_val_t al)
{
	return alloc_or_throw(n, checked(al), CALLER);
}

void *operator new(std::size_t n, std::align_val_t al,
		   const std::nothrow_t &) noexcept
{
	try {
		return alloc_or_throw(n, checked(al), CALLER);
	} catch (...) {
		return nullptr;
	}
}

void *operator new[](std::size_t n, std::align_val_t al,
		     const std::nothrow_t &) noexcept
{
	try {
		return alloc_or_throw(n, checked(al), CALLER);
	} catch (...) {
		return nullptr;
	}
}

void operator delete(void *p) noexcept { shim_free(p, 0, plain, CALLER); }
void operator delete[](void *p) noexcept { shim_free(p, 0, plain, CALLER); }

void operator delete(void *p, const std::nothrow_t &) noexcept
{
	shim_free(p, 0, plain, CALLER);
}

void operator delete[](void *p, const std::nothrow_t &) noexcept
{
	shim_free(p, 0, plain, CALLER);
}

// Sized: n is the size new was asked for; 0 was asked as 1.
void operator delete(void *p, std::size_t n) noexcept
{
	shim_free(p, n ? n : 1, plain, CALLER);
}

void operator delete[](void *p, std::size_t n) noexcept
{
	shim_free(p, n ? n : 1, plain, CALLER);
}

void operator delete(void *p, std::align_val_t al) noexcept
{
	shim_free(p, 0, static_cast<std::size_t>(al), CALLER);
}

void operator delete[](void *p, std::align_val_t al) noexcept
{
	shim_free(p, 0, static_cast<std::size_t>(al), CALLER);
}

void operator delete(void *p, std::size_t n, std::align_val_t al) noexcept
{
	shim_free(p, n ? n : 1, static_cast<std::size_t>(al), CALLER);
}

void operator delete[](void *p, std::size_t n, std::align_val_t al) noexcept
{
	shim_free(p, n ? n : 1, static_cast<std::size_t>(al), CALLER);
}

void operator delete(void *p, std::align_val_t al,
		     const std::nothrow_t &) noexcept
{
	shim_free(p, 0, static_cast<std::size_t>(al), CALLER);
}

void operator delete[](void *p, std::align_val_t al,
		       const std::nothrow_t &) noexcept
{
	shim_free(p, 0, static_cast<std::size_t>(al), CALLER);
}
