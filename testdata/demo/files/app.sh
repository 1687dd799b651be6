#!/bin/sh
echo "cpekit demo application 3.0.22"
