import t from 'tap'
import {
  isCurrentRegion,
  isProvinceCode,
  parentRegion,
  regionName,
  tierOfRegion,
} from '../../src/gb/region.js'

t.test('the four tiers of the design', async (t) => {
  t.equal(tierOfRegion('100000'), 'national')
  t.equal(tierOfRegion('320000'), 'province')
  t.equal(tierOfRegion('320100'), 'city')
  t.equal(tierOfRegion('320115'), 'county')
  t.equal(regionName('100000'), '中华人民共和国')
  t.equal(regionName('320000'), '江苏省')
  t.equal(regionName('320100'), '南京市')
  t.equal(regionName('320115'), '江宁区')
  t.equal(parentRegion('320115'), '320100')
  t.equal(parentRegion('320100'), '320000')
  t.equal(parentRegion('320000'), '100000')
  t.equal(parentRegion('100000'), undefined)
})

t.test('province codes', async (t) => {
  for (const c of ['32', '320000', '11', '650000', '81', '820000', '710000']) t.ok(isProvinceCode(c), c)
  for (const c of ['99', '320100', '320115', '100000', '10', '3', '3200', '32000', 'ab', '3a', '３２']) {
    t.notOk(isProvinceCode(c), c)
  }
  t.notOk(isProvinceCode(undefined as unknown as string))
  t.equal(regionName('810000'), '香港特别行政区')
})

t.test('municipalities: counties belong to the province directly', async (t) => {
  t.equal(tierOfRegion('110105'), 'county')
  t.equal(regionName('110105'), '朝阳区')
  t.ok(isCurrentRegion('110105'))
  t.equal(parentRegion('110105'), '110000')
  t.equal(regionName('110000'), '北京市')
  // 1101 "市辖区" is a grouping of the statistics list, not a division.
  t.notOk(isCurrentRegion('110100'))
  t.equal(parentRegion('500101'), '500000', 'Chongqing district')
  t.equal(parentRegion('500229'), '500000', 'Chongqing county')
  t.equal(parentRegion('419001'), '410000', 'Jiyuan, directly under Henan')
})

t.test('cities without counties and statistics-only codes', async (t) => {
  t.equal(regionName('441900'), '东莞市')
  t.equal(tierOfRegion('441900'), 'city')
  t.equal(parentRegion('441900'), '440000')
  t.notOk(isCurrentRegion('320576'), '苏州工业园区 is a statistics code, not a division')
})

t.test('retired and unknown codes', async (t) => {
  for (const c of ['320124', '440524', '329999']) {
    t.notOk(isCurrentRegion(c), c)
    t.equal(regionName(c), undefined, c)
  }
  t.ok(isCurrentRegion('320117'), 'Lishui district since 2013')
  t.equal(parentRegion('320124'), '320100', 'parent by shape')
  t.equal(parentRegion('440524'), '440500')
  t.equal(parentRegion('329901'), '320000', 'no such city: straight to the province')
})

t.test('malformed codes', async (t) => {
  for (const c of ['32011', '3201150', 'abcdef', '']) {
    t.throws(() => tierOfRegion(c), RangeError, c)
    t.throws(() => parentRegion(c), RangeError, c)
    t.notOk(isCurrentRegion(c), c)
  }
})
