#!/usr/bin/env python3
"""The scene of a seed in the default world, computed without C++: std::mt19937_64 written out from the standard's
parameters, and the draws of harness/common/draw.h. The golden of World.DrawsFollowTheEngineOutputsNotTheStandardLibrary
(tests/test_world.cpp) comes from here, so a scene depends on the seed alone, not on the standard library.
Usage: /usr/bin/python3 scripts/scene_draws.py [SEED]   (prints shape colour direction background pattern size x0 y0)"""
import math
import sys
M=(1<<64)-1
class MT64:
    def __init__(s, seed):
        s.mt=[0]*312; s.mt[0]=seed&M
        for i in range(1,312): s.mt[i]=(6364136223846793005*(s.mt[i-1]^(s.mt[i-1]>>62))+i)&M
        s.i=312
    def __call__(s):
        if s.i>=312:
            for k in range(312):
                y=(s.mt[k]&0xFFFFFFFF80000000)|(s.mt[(k+1)%312]&0x7FFFFFFF)
                s.mt[k]=s.mt[(k+156)%312]^(y>>1)^(0xB5026F5AA96619E9 if y&1 else 0)
            s.i=0
        x=s.mt[s.i]; s.i+=1
        x^=(x>>29)&0x5555555555555555; x^=(x<<17)&0x71D67FFFEDA60000; x^=(x<<37)&0xFFF7EEE000000000; x^=x>>43
        return x&M
r=MT64(5489)
for _ in range(9999): r()
assert r()==9981545732273789042   # the standard's check value
def below(r,n):
    rej=(M%n+1)%n
    while True:
        x=r()
        if x>=rej: return x%n
u01=lambda r:(r()>>11)*2.0**-53
seed=int(sys.argv[1]) if len(sys.argv) > 1 else 1
r=MT64(seed)
bg=["blue","green","gray"][below(r,3)]; pat=["solid","stripes"][below(r,2)]
shape=["circle","square"][below(r,2)]; col=["red","yellow","white"][below(r,3)]; d=["left","right","up","down"][below(r,4)]
r=MT64((seed*0x9E3779B97F4A7C15+1)&M)
size=10+below(r,3); rr=size/2; v={"left":(-2,0),"right":(2,0),"up":(0,-2),"down":(0,2)}[d]
xlo=rr-min(0,v[0]*7); xhi=32-rr-max(0,v[0]*7); ylo=rr-min(0,v[1]*7); yhi=32-rr-max(0,v[1]*7)
def rnd(x): return math.floor(x+0.5)
x0=rnd(xlo+(xhi-xlo)*u01(r)); y0=rnd(ylo+(yhi-ylo)*u01(r))
print(shape,col,d,bg,pat,size,min(max(x0,xlo),xhi),min(max(y0,ylo),yhi))
