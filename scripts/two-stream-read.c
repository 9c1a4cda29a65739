// Read bandwidth of one core over two arrays read alternately in blocks
// (as decode attention reads K and V), against one long stream. Not part of
// the build: gcc -O2 scripts/two-stream-read.c -o /tmp/two-stream && /tmp/two-stream
// (x86-64 with AVX-512). "work" adds dependent FMA chains per 256 bytes read.
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
// read n floats from a then n from b alternating in blocks of blk floats
__attribute__((target("avx512f"))) float rd2(const float* a, const float* b, long n, long blk, int work){
  __m512 a0=_mm512_setzero_ps(),a1=a0,a2=a0,a3=a0;
  for(long s=0;s<n;s+=blk){
    for(int w=0; w<2; w++){ const float* p=(w?b:a)+s;
      for(long i=0;i<blk;i+=64){
        __m512 x0=_mm512_loadu_ps(p+i),x1=_mm512_loadu_ps(p+i+16),x2=_mm512_loadu_ps(p+i+32),x3=_mm512_loadu_ps(p+i+48);
        for(int k=0;k<work;k++){x0=_mm512_fmadd_ps(x0,x0,x1);x1=_mm512_fmadd_ps(x1,x1,x2);x2=_mm512_fmadd_ps(x2,x2,x3);x3=_mm512_fmadd_ps(x3,x3,x0);}
        a0=_mm512_add_ps(a0,x0);a1=_mm512_add_ps(a1,x1);a2=_mm512_add_ps(a2,x2);a3=_mm512_add_ps(a3,x3);}
    }}
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0,a1),_mm512_add_ps(a2,a3)));}
int main(){
  size_t n=(256UL<<20)/4; float*a=aligned_alloc(64,n*4),*b=aligned_alloc(64,n*4); memset(a,0,n*4);memset(b,0,n*4);
  long blks[]={n,65536/4,16384/4}; 
  for(int w=0;w<=8;w+=4) for(int bi=0;bi<3;bi++){ double best=0; for(int r=0;r<3;r++){double t=now(); float s=rd2(a,b,n,blks[bi],w); t=now()-t; if(s==1.5f)printf("x"); double g=2.0*n*4/t/1e9; if(g>best)best=g;}
    printf("work=%d block=%ld B: %.1f GB/s\n",w,blks[bi]*4,best);} }
