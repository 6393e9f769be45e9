/*
 * sleeper.exe: an extra process for the medium Win32_Process benchmark, as small as
 * a Windows process gets (no C runtime, kernel32 only, no console, no window). It
 * tells bench_raw.spawn it is up, then waits until bench_raw.stop signals it.
 */
#include <windows.h>

void WINAPI sleeper_start( void )
{
    HANDLE stop = OpenEventW( SYNCHRONIZE, FALSE, L"luawmi-bench-stop" );
    HANDLE ready = OpenSemaphoreW( SEMAPHORE_MODIFY_STATE, FALSE, L"luawmi-bench-ready" );

    if (ready) ReleaseSemaphore( ready, 1, NULL );
    if (stop) WaitForSingleObject( stop, INFINITE );
    ExitProcess( 0 );
}
